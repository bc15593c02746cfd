// Package watcher holds the types every stage of the pipeline shares: the certificate event a
// source produces, the case the store keeps, the source contract and the run counters.
// The stages themselves live in the packages below it (source, pipeline, store).
package watcher

import (
	"context"
	"time"
)

// Event is one certificate (or one batch of names from a names-only feed) as a source saw it.
// Fields a source does not know stay zero.
type Event struct {
	// Names are the DNS names as the certificate lists them (may include "*." wildcards).
	Names []string
	// Seen is the entry's time in Certificate Transparency: the log's timestamp when read from
	// a log, when the certstream server saw it for certstream, when the line was read for a
	// plain name list. Cases are dated by it.
	Seen time.Time
	Cert Certificate
	// Position, when set, marks how far a CT log source has read: the event carries no names,
	// and the store records the position with the findings of the entries before it.
	Position *LogPosition
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
	// Serial is the certificate's serial number in hex (empty from certstream).
	Serial string `json:"serial,omitempty"`
	// Fingerprint identifies the certificate: the SHA-1 fingerprint certstream servers publish
	// ("AB:CD:..."), or, read from a CT log directly, the hex SHA-256 of the certificate (of
	// the TBS certificate for a precertificate, which is the same in every log that has it).
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Known reports whether the certificate can be told apart from others: a log entry (log and
// index) or a fingerprint. Names-only feeds carry no certificate.
func (c *Certificate) Known() bool {
	return c.Fingerprint != "" || (c.LogURL != "" && c.Index >= 0)
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
