package site

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// QueueStore is what the site-check queue reads and records; the SQLite store implements it.
type QueueStore interface {
	ClaimSiteChecks(ctx context.Context, n int, now time.Time, lease time.Duration, afterEnrichment bool) ([]watcher.Finding, []int, error)
	SaveSiteCheck(ctx context.Context, c *store.SiteCheck, revised *rules.Result, next time.Time) error
	FlaggedSitesSharing(ctx context.Context, kind, value, except string) (int, error)
}

// Recheck is when a site that showed nothing yet is fetched again, by check number: sites
// often go live days after their certificate.
var Recheck = []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour}

// Queue checks the sites of queued findings with a pool of workers and stores the evidence
// and the revised score.
type Queue struct {
	Store           QueueStore
	Rules           *rules.RuleSet
	Fetcher         *Fetcher
	Renderer        *Renderer // optional: script-built pages
	Library         *Library
	Workers         int           // default 8
	Lease           time.Duration // default 5 min
	Poll            time.Duration // default 2 s
	AfterEnrichment bool
	Drain           bool
	Log             *slog.Logger
	Stats           *watcher.Stats
	// Checked is told of each stored check, from the worker goroutines: concurrently.
	Checked func(f *watcher.Finding, c *store.SiteCheck)
}

// Run works the queue until ctx ends (or, with Drain, until nothing is due).
func (q *Queue) Run(ctx context.Context) error {
	if q.Workers <= 0 {
		q.Workers = 8
	}
	if q.Lease <= 0 {
		q.Lease = 5 * time.Minute
	}
	if q.Poll <= 0 {
		q.Poll = 2 * time.Second
	}
	if q.Log == nil {
		q.Log = slog.Default()
	}
	if q.Stats == nil {
		q.Stats = &watcher.Stats{}
	}
	sem := make(chan struct{}, q.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		batch, attempts, err := q.Store.ClaimSiteChecks(ctx, q.Workers, time.Now(), q.Lease, q.AfterEnrichment)
		if err != nil && ctx.Err() == nil {
			q.Log.Error("reading the site-check queue failed", "err", err)
		}
		if len(batch) == 0 {
			if q.Drain {
				wg.Wait()
				return nil
			}
			select {
			case <-time.After(q.Poll):
			case <-ctx.Done():
			}
			continue
		}
		for i := range batch {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			wg.Add(1)
			go func(f watcher.Finding, attempt int) {
				defer func() { <-sem; wg.Done() }()
				q.check(ctx, &f, attempt)
			}(batch[i], attempts[i])
		}
		if q.Drain {
			wg.Wait()
		}
	}
	return nil
}

func (q *Queue) check(ctx context.Context, f *watcher.Finding, attempt int) {
	rep, got := CheckLive(ctx, q.Rules, q.Library, q.Fetcher, q.Renderer, f.Domain)
	if ctx.Err() != nil {
		return // claimed: due again after the lease
	}
	c := &store.SiteCheck{Name: f.Domain, At: time.Now().UTC(), URL: rep.URL, Status: rep.Status, Title: rep.Title,
		Verdict: rep.Verdict, Score: rep.Score, Brand: rep.Brand, Reasons: rep.Reasons, Indicators: rep.Indicate, Phones: rep.Phones,
		SHA256: rep.SHA256, TLSH: rep.TLSH, SimilarTo: rep.Similar, Error: rep.Error, Body: got.Body, Chats: rep.Chats, Kit: rep.Kit}
	res := rules.SiteResult{Verdict: rep.Verdict, Score: rep.Score, Brand: rep.Brand, Reasons: rep.Reasons}
	// A phone number or chat account already seen on flagged sites is known at once.
	known := 0
	for _, p := range c.Phones {
		n, _ := q.Store.FlaggedSitesSharing(ctx, "phone", p.E164, f.Domain)
		known += n
	}
	for _, ch := range c.Chats {
		n, _ := q.Store.FlaggedSitesSharing(ctx, "chat", ch, f.Domain)
		known += n
	}
	base := f.Result
	if f.Enrichment != nil {
		base = q.Rules.Revise(&f.Result, enrich.Facts(f.Enrichment))
	}
	revised := q.Rules.WithSite(base, res, known)
	var next time.Time
	if (c.Verdict == rules.SiteUnreachable || c.Verdict == rules.SiteParked) && attempt <= len(Recheck) {
		next = c.At.Add(Recheck[attempt-1])
	}
	if err := q.Store.SaveSiteCheck(context.Background(), c, &revised, next); err != nil {
		q.Log.Error("storing the site check failed", "name", f.Domain, "err", err)
		return
	}
	if q.Checked != nil {
		q.Checked(f, c)
	}
}
