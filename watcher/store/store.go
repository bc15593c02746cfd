// Package store keeps findings. Store is the contract the pipeline and the commands use; SQLite
// (modernc.org/sqlite, no cgo) is the embedded default, and another database can implement the
// same interface without the pipeline noticing.
package store

import (
	"context"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

// Sighting is one scored name from one event, as the pipeline hands it to the store.
type Sighting struct {
	Result rules.Result
	// At is when helpwatch saw the name (wall clock); it becomes first_seen and last_seen.
	At time.Time
	// CTSeen is when the certstream server saw the certificate.
	CTSeen time.Time
	Cert   watcher.Certificate
}

// Counts are run counters added to the per-day totals with each batch.
type Counts struct {
	Messages, Names, Findings, Dropped int64
}

// Query selects findings. Zero fields do not filter.
type Query struct {
	Since      time.Time     // first seen at or after
	Until      time.Time     // first seen before
	MinVerdict rules.Verdict // at or above this verdict
	Verdict    rules.Verdict // exactly this verdict
	Brand      string
	Name       string
	Limit      int
}

// Store keeps findings across restarts.
type Store interface {
	// Save writes one batch atomically: all of it or none of it. A name not stored before
	// becomes a finding with the sighting's score and certificate. A known name keeps its first
	// score and certificate; its last_seen moves forward, and its certificate count grows by one
	// for each certificate (by fingerprint, else log and index) not seen with it before, so the
	// same batch saved twice counts nothing twice. counts are added to today's totals. Save
	// returns the findings the batch created, in batch order.
	Save(ctx context.Context, batch []Sighting, counts Counts) (created []watcher.Finding, err error)
	// Findings returns the findings matching q, most recently first-seen first.
	Findings(ctx context.Context, q Query) ([]watcher.Finding, error)
	// ClaimEnrichment returns up to n findings due for enrichment (Save queues every new
	// finding), oldest first, and holds them for lease: a finding claimed but never finished is
	// handed out again after the lease, so a crash loses no pending enrichment.
	ClaimEnrichment(ctx context.Context, n int, now time.Time, lease time.Duration) ([]watcher.Finding, error)
	// DueEnrichment counts the findings whose enrichment is due at now, without claiming them.
	DueEnrichment(ctx context.Context, now time.Time) (int, error)
	// SaveEnrichment stores the enrichment and the revised score of a finding and takes it off
	// the queue; the first score is not touched.
	SaveEnrichment(ctx context.Context, e *watcher.Enrichment, revised *rules.Result) error
	// RetryEnrichment keeps a claimed finding queued, due again at next, noting why it failed.
	// After MaxEnrichAttempts it declines (giveUp true) and the caller stores what it has.
	RetryEnrichment(ctx context.Context, name string, next time.Time, reason string) (giveUp bool, err error)
	// CachedRegistration returns registration data cached for a registrable domain and not
	// expired at now.
	CachedRegistration(ctx context.Context, registrable string, now time.Time) (*watcher.Registration, bool, error)
	// CacheRegistration keeps registration data for a registrable domain until expires.
	CacheRegistration(ctx context.Context, registrable string, reg *watcher.Registration, expires time.Time) error
	// Close flushes and closes the store; it must be called for a clean shutdown, but a store
	// that was not closed (a crash) is still consistent and loses no committed batch.
	Close() error
}
