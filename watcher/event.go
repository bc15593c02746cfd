// Package watcher holds the types every stage of the pipeline shares: the certificate event a
// source produces, the finding the store keeps, the source contract and the run counters.
// The stages themselves live in the packages below it (source, pipeline, store).
package watcher

import (
	"context"
	"time"

	"github.com/helpwatch/helpwatch/rules"
)

// Event is one certificate (or one batch of names from a names-only feed) as a source saw it.
// Fields a source does not know stay zero.
type Event struct {
	// Names are the DNS names as the certificate lists them (may include "*." wildcards).
	Names []string
	// Seen is when the certstream server saw the entry; for replays of plain name lists, when
	// the line was read.
	Seen time.Time
	Cert Certificate
}

// Certificate identifies the CT entry behind an event.
type Certificate struct {
	LogName   string    `json:"log_name,omitempty"`
	LogURL    string    `json:"log_url,omitempty"`
	Index     int64     `json:"index"` // -1 when the source gave no index
	Link      string    `json:"link,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	// Fingerprint is the SHA-1 fingerprint certstream servers publish ("AB:CD:...").
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Known reports whether the certificate can be told apart from others: a log entry (log and
// index) or a fingerprint. Names-only feeds carry no certificate.
func (c *Certificate) Known() bool {
	return c.Fingerprint != "" || (c.LogURL != "" && c.Index >= 0)
}

// Finding is a scored name the store keeps: the first score, when and how often it was seen,
// and the first certificate that carried it.
type Finding struct {
	rules.Result
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	CertCount int       `json:"cert_count"`
	// CTSeen is when the certstream server saw the first certificate (the event's Seen).
	CTSeen time.Time   `json:"ct_seen,omitzero"`
	Cert   Certificate `json:"certificate"`
	// Enrichment and Revised are set once the finding was enriched: what was learned, and the
	// score revised with it (the embedded Result stays the first score).
	Enrichment *Enrichment   `json:"enrichment,omitempty"`
	Revised    *rules.Result `json:"revised,omitempty"`
	// Rescored is the name scored again with another rule file (`findings --rescore`); it is
	// shown, never stored.
	Rescored *rules.Result `json:"rescored,omitempty"`
}

// Source produces certificate events.
type Source interface {
	// Run calls emit for every event, in order, from one goroutine, until the source ends (a
	// replay reaches the end of its file: Run returns nil) or ctx is cancelled (Run returns
	// ctx.Err() promptly). Faults a live source recovers from (disconnects, malformed frames)
	// are counted in stats and never end Run; faults it cannot recover from are returned.
	Run(ctx context.Context, emit func(*Event), stats *Stats) error
	// Live reports whether the source pushes at its own pace and cannot wait: the pipeline drops
	// (and counts) events it cannot keep up with instead of blocking a live source, and blocks a
	// replay instead of dropping.
	Live() bool
	// String names the source for logs ("wss://certstream.example/", "replay samples.jsonl").
	String() string
}
