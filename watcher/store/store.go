// Package store keeps cases, their facts and the job queue. Store is the contract the pipeline,
// the workers and the commands use; SQL implements it on SQLite (embedded, the default) and
// on PostgreSQL (a team's shared database).
package store

import (
	"context"
	"errors"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
)

// Sighting is one scored name from one event, as the pipeline hands it to the store.
type Sighting struct {
	// Result is the name's score; its Domain is the name as the certificate gave it.
	Result rules.Result
	// At is when helpwatch read the name (wall clock).
	At time.Time
	// CTSeen is the entry's time in Certificate Transparency (watcher.Event.Seen).
	CTSeen time.Time
	Cert   watcher.Certificate
	// Position, when set, makes this sighting a CT log position marker instead (the other
	// fields are empty): it is stored with the batch, so the entries before it and the
	// position they reach are committed together.
	Position *watcher.LogPosition
}

// Counts are run counters added to the per-day totals with each batch.
type Counts struct {
	Messages, Names, Findings, Dropped int64
}

// Query selects cases. Zero fields do not filter.
type Query struct {
	// Since and Until bound the CT time of the case's first certificate: [Since, Until).
	// With ByReadTime they bound when helpwatch first read it instead.
	Since, Until time.Time
	ByReadTime   bool
	MinVerdict   rules.Verdict // the case's verdict at or above this
	Verdict      rules.Verdict // exactly this verdict
	Brand        string        // case-insensitive
	Registrable  string        // exactly this case
	// Label: "" any; "none" unlabeled; or scam, benign, unsure.
	Label string
	// ByPoints orders by the uncapped points, highest first (then newest), instead of newest first.
	ByPoints bool
	Limit    int
}

// Label is an analyst's judgement of a case, kept as a history (the latest counts).
type Label struct {
	Registrable string      `json:"registrable"`
	Label       rules.Label `json:"label"` // scam, benign, unsure
	Note        string      `json:"note,omitempty"`
	By          string      `json:"by"`
	At          time.Time   `json:"at"`
}

// Job kinds, by name (the registry is package jobs).
var (
	KindEnrich = jobs.Enrich.Name
	KindSite   = jobs.Site.Name
)

// Job is one unit of background work on a case, as a worker holds it.
type Job struct {
	ID          int64
	Kind        string
	CaseID      int64
	Registrable string
	// Run numbers repeated work of the same kind (the site check's re-checks: 0 is the first).
	Run int
	// Ref names what the job is about beyond its case (a delivery's abuse report); 0 for the
	// kinds that have one job per case.
	Ref int64
	// Attempt counts the tries of this job, this one included; MaxAttempts bounds them.
	Attempt, MaxAttempts int
	Owner                string
	Created, Due         time.Time
	LastError            string
}

// Worker is a process that holds jobs: where it runs and which process it is, so that another
// process on the same host can tell it has exited and take its jobs at once.
type Worker struct {
	ID       string
	Host     string
	PID      int
	PIDStart string // the process's start time (Linux: /proc/PID/stat field 22)
	Started  time.Time
}

// KindStats are the queue's numbers for one job kind.
type KindStats struct {
	Kind      string  `json:"kind"`
	Queued    int     `json:"queued"`    // due now
	Scheduled int     `json:"scheduled"` // due later (re-checks, retries)
	Running   int     `json:"running"`
	Done      int     `json:"done"`
	Failed    int     `json:"failed"`
	Retried   int     `json:"retried"`             // retries so far, over all jobs
	OldestAge float64 `json:"oldest_queued_age_s"` // seconds the oldest due job has waited
}

// ErrLeaseLost is returned when a worker reports on a job it no longer holds (its lease ran
// out and another worker took it): nothing is written, the other worker's result counts.
var ErrLeaseLost = errors.New("the job is no longer held by this worker (its lease ended and another worker took it)")

// Store keeps cases across restarts. Every method is safe for concurrent use; writes are
// atomic: all of one call or none of it.
type Store interface {
	// Save writes one batch. A name not stored before joins its case (created when new) with
	// its score and certificate; a known name's last_seen moves and its certificate count
	// grows by one per certificate (by fingerprint, else log and index) not seen with it
	// before, so the same batch saved twice counts nothing twice. Names are keyed by their
	// canonical spelling (rules.Canonical): "X.COM", "x.com." and "*.x.com" are one name. A
	// case that is new or got a new name is rescored and queued for enrichment and the site
	// check (once: a job already pending is not queued again). counts are added to today's
	// totals. Save returns the cases the batch created, in batch order.
	Save(ctx context.Context, batch []Sighting, counts Counts) (created []watcher.Case, err error)
	// Cases returns the cases matching q with their names, enrichment, latest site checks and
	// label, most recent CT time first.
	Cases(ctx context.Context, q Query) ([]watcher.Case, error)
	// Case returns one case by registrable domain; ok is false when there is none.
	Case(ctx context.Context, registrable string) (*watcher.Case, bool, error)
	// CaseByID is Case by the id a job carries.
	CaseByID(ctx context.Context, id int64) (*watcher.Case, bool, error)

	JobStore

	// SaveEnrichment stores what the lookups found for job's case, completes the job and
	// rescores the case, in one transaction; ErrLeaseLost when job is no longer held.
	SaveEnrichment(ctx context.Context, job *Job, en *watcher.Enrichment) error
	// SaveSiteChecks keeps the evidence of each name's check, links their phone numbers, chat
	// accounts, kits and pages to the case, completes the job, queues the next re-check when
	// recheck is not zero, and rescores the case and every case that shares a number or chat
	// account with it, in one transaction; ErrLeaseLost when job is no longer held.
	SaveSiteChecks(ctx context.Context, job *Job, checks []SiteCheck, recheck time.Time) error
	// CachedRegistration returns registration data cached for a registrable domain and not
	// expired at now.
	CachedRegistration(ctx context.Context, registrable string, now time.Time) (*watcher.Registration, bool, error)
	// CacheRegistration keeps registration data for a registrable domain until expires.
	CacheRegistration(ctx context.Context, registrable string, reg *watcher.Registration, expires time.Time) error

	// LogPositions returns the stored position of every CT log read so far.
	LogPositions(ctx context.Context) ([]watcher.LogPosition, error)

	// AddLabel records a label (the history is kept) and rescores the case; a label for a
	// domain not seen yet waits for it.
	AddLabel(ctx context.Context, l Label) error
	// Labels returns the latest label of every case labeled at or after since.
	Labels(ctx context.Context, since time.Time) ([]Label, error)
	// Rescore recomputes the cached score of every case scored with another rule-set version
	// than the store's rules, and returns how many changed.
	Rescore(ctx context.Context) (int, error)

	// Close flushes and closes the store; a store that was not closed (a crash) is still
	// consistent and loses no committed write.
	Close() error
}

// JobStore is the job queue: claim with a lease, renew the lease while the worker lives,
// complete, retry with a reason, release on stop. Jobs are at-least-once: a worker that dies
// mid-job leaves it to another; completions are exactly-once, because a worker that lost its
// lease cannot complete (ErrLeaseLost).
type JobStore interface {
	// RegisterWorker records a worker process; its jobs are held in its name.
	RegisterWorker(ctx context.Context, w Worker) error
	// Heartbeat says the worker lives: its row and the leases of its running jobs move to
	// lease from now, so a job may run (or wait on a rate limit) longer than one lease.
	Heartbeat(ctx context.Context, workerID string, now time.Time, lease time.Duration) error
	// ClaimJobs hands out up to n due jobs of kinds, oldest due first, leased to the worker
	// until now+lease. Before claiming it takes back the jobs of workers that are gone: those
	// whose lease ran out, and at once those of processes on this host that have exited.
	// With afterKinds, a job whose case still has a pending job of its after_kind waits (the
	// site check waits for the enrichment).
	ClaimJobs(ctx context.Context, workerID string, kinds []string, n int, now time.Time, lease time.Duration, afterKinds bool) ([]Job, error)
	// RetryJob puts a held job back, due at at, with reason kept. countAttempt false leaves
	// the attempt uncounted (a rate-limit pause is not a failure). After MaxAttempts counted
	// attempts the job fails instead (failed true).
	RetryJob(ctx context.Context, job *Job, at time.Time, reason string, countAttempt bool) (failed bool, err error)
	// ReleaseJob gives a held job back at once, its attempt uncounted (the worker is stopping).
	ReleaseJob(ctx context.Context, job *Job) error
	// FailJob ends a held job as failed, with reason.
	FailJob(ctx context.Context, job *Job, reason string) error
	// PendingJobs counts the jobs of kinds that are queued (due or not) or running.
	PendingJobs(ctx context.Context, kinds []string) (int, error)
	// DueJobs counts the jobs of kinds due at now and not held.
	DueJobs(ctx context.Context, kinds []string, now time.Time) (int, error)
	// JobStats are the queue's numbers per kind.
	JobStats(ctx context.Context, now time.Time) ([]KindStats, error)
	// UnregisterWorker releases the worker's jobs at once and forgets it.
	UnregisterWorker(ctx context.Context, workerID string) error
}

var _ Store = (*SQL)(nil)
