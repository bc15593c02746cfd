package watcher

import (
	"sync"
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
	// Gaps counts, per CT log, the entries a certstream server skipped: its protocol has no
	// replay, so what it lost while restarting or overloaded is only visible as jumps in each
	// log's cert_index.
	Gaps Gaps
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

// maxGapLogs bounds the logs tracked: a hostile server naming a new log in every frame must
// not grow the map without end.
const maxGapLogs = 512

// Gaps follows each log's entry index in a stream of certificates and counts the indexes that
// never arrived. Safe for concurrent use; the zero value is ready.
type Gaps struct {
	mu   sync.Mutex
	logs map[string]*gapLog
}

type gapLog struct {
	last, missed int64
}

// Observe records entry index of log and returns how many entries it shows missing (the jump
// from the last index seen, minus one). An index at or below the last one (a server re-sending,
// or a second connection) counts nothing.
func (g *Gaps) Observe(log string, index int64) int64 {
	if log == "" || index < 0 {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.logs == nil {
		g.logs = map[string]*gapLog{}
	}
	l, ok := g.logs[log]
	if !ok {
		if len(g.logs) >= maxGapLogs {
			return 0
		}
		g.logs[log] = &gapLog{last: index}
		return 0
	}
	if index <= l.last {
		return 0
	}
	missed := index - l.last - 1
	l.missed += missed
	l.last = index
	return missed
}

// Missed returns the entries missed so far per log (logs that missed nothing included).
func (g *Gaps) Missed() map[string]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]int64, len(g.logs))
	for name, l := range g.logs {
		out[name] = l.missed
	}
	return out
}

// Total is the sum of Missed.
func (g *Gaps) Total() int64 {
	var n int64
	for _, m := range g.Missed() {
		n += m
	}
	return n
}
