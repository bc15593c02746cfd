package watcher

import (
	"sync/atomic"
	"time"
)

// Stats are the run counters every stage adds to; status lines and /metrics read them. All
// fields are safe for concurrent use.
type Stats struct {
	Messages   atomic.Int64 // certificate and names messages decoded
	Heartbeats atomic.Int64
	Other      atomic.Int64 // well-formed messages of a type we do not use
	Malformed  atomic.Int64 // frames or lines that did not decode
	Oversized  atomic.Int64 // frames or lines over the size limit
	Connects   atomic.Int64 // successful connections of a live source
	Reconnects atomic.Int64 // connection losses and failed dials of a live source
	Names      atomic.Int64 // names scored (after dedupe)
	Duplicates atomic.Int64 // names answered from the dedupe cache
	Dropped    atomic.Int64 // events dropped because the pipeline fell behind a live source
	Findings   atomic.Int64 // new cases stored
	Updates    atomic.Int64 // sightings of known findings stored
	StoreErrs  atomic.Int64 // failed store writes (retried)
	lastFrame  atomic.Int64 // unix nanoseconds of the last frame of any kind
}

// Touch records that a frame (message or heartbeat) arrived now.
func (s *Stats) Touch() { s.lastFrame.Store(time.Now().UnixNano()) }

// LastFrame is when the last frame arrived; zero if none yet.
func (s *Stats) LastFrame() time.Time {
	n := s.lastFrame.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
