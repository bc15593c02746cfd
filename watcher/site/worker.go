package site

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Recheck is when a case whose sites showed nothing yet is checked again, by re-check number
// (the registry's schedule).
var Recheck = jobs.Site.Rechecks

// MaxNamesPerCheck bounds the names of one case fetched in one check: the registrable domain,
// www and a few more say what the case serves.
const MaxNamesPerCheck = 3

// Store is what the site-check worker reads and records.
type Store interface {
	CaseByID(ctx context.Context, id int64) (*watcher.Case, bool, error)
	SaveSiteChecks(ctx context.Context, job *store.Job, checks []store.SiteCheck, recheck time.Time) error
}

// Worker is the "site" job handler: it checks the sites of a case's names, stores the
// evidence, and schedules the next re-check while nothing is up; the store rescores the case
// (and the cases sharing its phone numbers) in the same transaction.
type Worker struct {
	Store    Store
	Rules    *rules.RuleSet
	Fetcher  *Fetcher
	Renderer *Renderer // optional: script-built pages
	Library  *Library
	// Checked is told of each stored check, from the worker goroutines: concurrently.
	Checked func(c *watcher.Case, checks []store.SiteCheck)
}

// namesToCheck picks the case's names to fetch: the registrable domain, then www, then the
// others in the order they were seen, at most MaxNamesPerCheck.
func namesToCheck(c *watcher.Case) []string {
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] && len(names) < MaxNamesPerCheck {
			seen[n] = true
			names = append(names, n)
		}
	}
	has := map[string]bool{}
	for _, n := range c.Names {
		has[n.Name] = true
	}
	if has[c.Registrable] || len(c.Names) == 0 {
		add(c.Registrable)
	}
	if has["www."+c.Registrable] {
		add("www." + c.Registrable)
	}
	ordered := append([]watcher.CaseName(nil), c.Names...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].FirstSeen.Before(ordered[j].FirstSeen) })
	for _, n := range ordered {
		add(n.Name)
	}
	return names
}

// Handle checks the job's case.
func (w *Worker) Handle(ctx context.Context, job *store.Job) error {
	c, ok, err := w.Store.CaseByID(ctx, job.CaseID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("case %d (%s) is not in the store", job.CaseID, job.Registrable)
	}
	var checks []store.SiteCheck
	results := make([]rules.SiteResult, 0, MaxNamesPerCheck)
	for _, name := range namesToCheck(c) {
		rep, got := CheckSite(ctx, w.Rules, w.Library, w.Fetcher, w.Renderer, name)
		if err := ctx.Err(); err != nil {
			return err
		}
		checks = append(checks, rep.Evidence(name, time.Now().UTC(), got.Body))
		results = append(results, rules.SiteResult{Verdict: rep.Verdict, Score: rep.Score})
	}
	var next time.Time
	if best := rules.StrongestSite(results); best != nil && (best.Verdict == rules.SiteUnreachable || best.Verdict == rules.SiteParked) &&
		job.Run < len(Recheck) {
		next = time.Now().Add(Recheck[job.Run])
	}
	if err := w.Store.SaveSiteChecks(context.WithoutCancel(ctx), job, checks, next); err != nil {
		return err
	}
	if w.Checked != nil {
		w.Checked(c, checks)
	}
	return nil
}

// Summary is one line about a case's checks, for logs.
func Summary(checks []store.SiteCheck) string {
	parts := make([]string, 0, len(checks))
	for _, c := range checks {
		parts = append(parts, fmt.Sprintf("%s %s %d", c.Name, c.Verdict, c.Score))
	}
	return strings.Join(parts, ", ")
}

// Kind is the site check as the runner's job kind (jobs.Site), with workers concurrent jobs
// (0: the registry's default).
func (w *Worker) Kind(workers int) queue.Kind { return queue.KindOf(jobs.Site, w.Handle, workers) }
