package watcher

import "time"

// LogPosition is how far a source has read one Certificate Transparency log: every entry
// before Next was handed to the pipeline, read against a tree head whose signature and
// consistency with every earlier head were checked. A source sends it as an event of its own
// after the entries it covers; the store keeps it in the same transaction as their findings,
// so a restart carries on at Next without skipping or repeating an entry.
type LogPosition struct {
	// LogID is the log's id as the log list gives it (base64 of the SHA-256 of its key).
	LogID string
	Name  string
	URL   string
	// The verified tree head the entries were read against.
	TreeSize int64
	RootHash []byte
	TreeTime time.Time
	Next     int64
	// Compact is the log's Merkle tree frontier over [0, Next) for RFC 6962 logs (at most 64
	// hashes): what lets the next entries be checked against a later tree head without
	// reading the log from the start. Static-ct-api logs need none (their tiles carry it).
	Compact [][]byte
	// Read is how many entries this position adds to the log's count since the last one.
	Read int64
}

// LogStatus is what a CT log source reports about one log it follows, for status lines,
// metrics and `helpwatch logs`.
type LogStatus struct {
	Name  string `json:"name"`
	URL   string `json:"url"`
	Kind  string `json:"kind"`  // rfc6962 or static-ct-api
	State string `json:"state"` // the log list's state: usable, qualified, readonly
	// Followed says whether the log is followed; Why says why (its state and temporal
	// interval) or why not.
	Followed bool      `json:"followed"`
	Why      string    `json:"why"`
	TreeSize int64     `json:"tree_size"` // of the newest verified head
	TreeTime time.Time `json:"tree_time,omitzero"`
	Next     int64     `json:"next_index"`
	// NextTime is the log timestamp of the newest entry read (zero before the first).
	NextTime time.Time `json:"next_time,omitzero"`
	// Entries read in this run; Rate is their recent rate per second.
	Entries        int64   `json:"entries"`
	Rate           float64 `json:"entries_per_s"`
	VerifyFailures int64   `json:"verification_failures"`
	HTTPErrors     int64   `json:"http_errors"`
	LastError      string  `json:"last_error,omitempty"`
	// Malformed counts entries in the tree that could not be read (skipped, not stalled on).
	Malformed int64 `json:"malformed_entries,omitempty"`
	// StaleHeads counts heads older than the verified one (a lagging frontend), each proved
	// to be a prefix of it and otherwise ignored.
	StaleHeads int64 `json:"stale_heads,omitempty"`
	// RetryAt is set while the log has asked (HTTP 429 or 5xx with Retry-After) not to be
	// asked again before then.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// Final is set for a read-only log read up to its final tree head: nothing more will come.
	Final bool `json:"final,omitempty"`
	// Standby: another watch process follows this log (a shared store); this one takes it
	// over if that one goes.
	Standby bool `json:"standby,omitempty"`
}

// LagEntries is how many entries of the newest verified head are not read yet.
func (s *LogStatus) LagEntries() int64 { return max(s.TreeSize-s.Next, 0) }

// Lag is how old the newest thing not yet read may be: when caught up, the age of the newest
// verified head (what the log has not told us yet is younger than that); when behind, the age
// of the newest entry read; before any head, the time since start (given as since).
func (s *LogStatus) Lag(now, since time.Time) time.Duration {
	switch {
	case s.Final || s.Standby:
		return 0
	case s.TreeTime.IsZero():
		return now.Sub(since)
	case s.Next >= s.TreeSize || s.NextTime.IsZero():
		return max(now.Sub(s.TreeTime), 0)
	}
	return max(now.Sub(s.NextTime), 0)
}
