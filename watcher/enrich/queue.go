package enrich

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Queue works through the store's enrichment queue with a pool of workers. The queue lives in
// the store: a finding claimed and not finished (a crash, a stop) is handed out again, so a
// restart loses no pending enrichment.
type Queue struct {
	Store    store.Store
	Enricher *Enricher
	Workers  int           // concurrent lookups (default 16)
	Lease    time.Duration // how long a claimed finding is held (default 5 min)
	Poll     time.Duration // how often an empty queue is looked at again (default 1 s)
	Retry    time.Duration // when a finding nothing answered for is tried again (default 15 min)
	Log      *slog.Logger
	Stats    *watcher.Stats
	// Drain makes Run return once the queue is empty (one-off runs, tests, benchmarks);
	// otherwise Run waits for new findings until ctx ends.
	Drain bool
	// Enriched is called after each finding's enrichment is stored, from the worker
	// goroutines: concurrently.
	Enriched func(f *watcher.Finding)
}

func (q *Queue) defaults() {
	if q.Workers <= 0 {
		q.Workers = 16
	}
	if q.Lease <= 0 {
		q.Lease = 5 * time.Minute
	}
	if q.Poll <= 0 {
		q.Poll = time.Second
	}
	if q.Retry <= 0 {
		q.Retry = 15 * time.Minute
	}
	if q.Log == nil {
		q.Log = slog.Default()
	}
	if q.Stats == nil {
		q.Stats = &watcher.Stats{}
	}
}

// Run enriches queued findings until ctx ends (or, with Drain, until the queue is empty).
// Lookups in flight when ctx ends are put back on the queue, due at once.
func (q *Queue) Run(ctx context.Context) error {
	q.defaults()
	sem := make(chan struct{}, q.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	var lastErr time.Time
	for {
		if ctx.Err() != nil {
			return nil
		}
		batch, err := q.Store.ClaimEnrichment(ctx, q.Workers, time.Now(), q.Lease)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if time.Since(lastErr) > 30*time.Second {
				lastErr = time.Now()
				q.Log.Error("reading the enrichment queue failed; retrying", "err", err)
			}
		}
		if len(batch) == 0 {
			if q.Drain {
				wg.Wait()
				if due, err := q.Store.DueEnrichment(ctx, time.Now()); err == nil && due == 0 {
					return nil
				}
				continue
			}
			if err := sleepCtx(ctx, q.Poll); err != nil {
				return nil
			}
			continue
		}
		for i := range batch {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				q.putBack(batch[i:], "stopped before it was looked up")
				return nil
			}
			wg.Add(1)
			go func(f watcher.Finding) {
				defer func() { <-sem; wg.Done() }()
				q.process(ctx, &f)
			}(batch[i])
		}
	}
}

func (q *Queue) process(ctx context.Context, f *watcher.Finding) {
	en := q.Enricher.Enrich(ctx, f.Domain, f.Registrable)
	if ctx.Err() != nil {
		q.putBack([]watcher.Finding{*f}, "stopped during the lookup")
		return
	}
	if en.DNS.State == watcher.Unknown && en.Registration.State == watcher.Unknown {
		reason := en.DNS.Reason + "; " + en.Registration.Reason
		giveUp, err := q.Store.RetryEnrichment(context.Background(), f.Domain, time.Now().Add(q.Retry), reason)
		if err != nil {
			q.Log.Error("could not requeue enrichment", "name", f.Domain, "err", err)
		}
		if !giveUp {
			q.Stats.EnrichLate.Add(1)
			return
		}
		// Nothing answered, many times: keep the unknowns with their reasons, so the report and
		// the abuse mail say why, and the site check can go ahead.
	}
	revised := q.Enricher.Rules.Revise(&f.Result, Facts(en))
	if err := q.Store.SaveEnrichment(context.Background(), en, &revised); err != nil {
		// It stays queued and comes back after its lease.
		q.Log.Error("storing enrichment failed", "name", f.Domain, "err", err)
		return
	}
	q.Stats.Enriched.Add(1)
	if q.Enriched != nil {
		f.Enrichment, f.Revised = en, &revised
		q.Enriched(f)
	}
}

// putBack makes findings due again now; it uses a fresh context because ctx has ended.
func (q *Queue) putBack(fs []watcher.Finding, reason string) {
	for i := range fs {
		q.Stats.EnrichLate.Add(1)
		if _, err := q.Store.RetryEnrichment(context.Background(), fs[i].Domain, time.Now(), reason); err != nil {
			q.Log.Error("could not requeue enrichment", "name", fs[i].Domain, "err", err)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
