package enrich

import (
	"context"
	"fmt"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Store is what the enrichment worker reads and records.
type Store interface {
	CaseByID(ctx context.Context, id int64) (*watcher.Case, bool, error)
	SaveEnrichment(ctx context.Context, job *store.Job, en *watcher.Enrichment) error
}

// maxPauseDeferral bounds how long a case may keep waiting for a server that asks us to slow
// down without that counting as a failed attempt.
const maxPauseDeferral = 48 * time.Hour

// Worker is the "enrich" job handler: it looks a case up and stores what it found; the store
// rescores the case in the same transaction.
type Worker struct {
	Store    Store
	Enricher *Enricher
	// Enriched is told of each stored enrichment, from the worker goroutines: concurrently.
	Enriched func(c *watcher.Case, en *watcher.Enrichment)
}

// Handle enriches the job's case. When nothing answered it asks to be tried again, until the
// last attempt, which keeps the unknowns with their reasons (so reports say why, and the site
// check can go ahead). A registry that asked us to slow down makes the job wait for it without
// spending an attempt.
func (w *Worker) Handle(ctx context.Context, job *store.Job) error {
	c, ok, err := w.Store.CaseByID(ctx, job.CaseID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("case %d (%s) is not in the store", job.CaseID, job.Registrable)
	}
	names := make([]string, 0, len(c.Names))
	for _, n := range c.Names {
		names = append(names, n.Name)
	}
	en := w.Enricher.Enrich(ctx, c.Registrable, names)
	if err := ctx.Err(); err != nil {
		return err
	}
	if reg := en.Registration; reg.State == watcher.Unknown && !reg.RetryAt.IsZero() && time.Since(job.Created) < maxPauseDeferral {
		return &queue.Retry{At: reg.RetryAt, Reason: reg.Reason, NoAttempt: true}
	}
	if Unanswered(en) && job.Attempt < job.MaxAttempts {
		return &queue.Retry{Reason: "nothing answered: " + en.Registration.Reason + "; DNS: " + firstDNSReason(en)}
	}
	// The result is stored even if the run is stopping now: it is complete.
	if err := w.Store.SaveEnrichment(context.WithoutCancel(ctx), job, en); err != nil {
		return err
	}
	if w.Enriched != nil {
		w.Enriched(c, en)
	}
	return nil
}

func firstDNSReason(en *watcher.Enrichment) string {
	for _, d := range en.DNS {
		if d.Reason != "" {
			return d.Reason
		}
	}
	return "no answer"
}

// Kind is the enrichment as the runner's job kind (jobs.Enrich), with workers concurrent jobs
// (0: the registry's default).
func (w *Worker) Kind(workers int) queue.Kind { return queue.KindOf(jobs.Enrich, w.Handle, workers) }
