package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/capture"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/netguard"
	"github.com/helpwatch/helpwatch/watcher/notify"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/site"
	"github.com/helpwatch/helpwatch/watcher/store"
)

const workUsage = `usage: helpwatch work [--kinds enrich,site] [--drain] [--db PATH|URL] [lookup and site flags]

Works the database's job queue: the enrichment of each case (DNS, RDAP, WHOIS) and the site
check of its names, with re-checks at 1 h, 6 h, 24 h and 3 days while nothing is up. This is what
'helpwatch watch' does in the background; run it after a replay, or on more machines beside one
watch (a team's shared database). Jobs held by a process that exited on this machine are taken
over at once; those of a process on another machine when its lease ends. Every case's score is
recomputed from its facts as each job stores them.

--drain exits once nothing this process can do is due (re-checks scheduled for later stay
queued); without it, the workers wait for new jobs until Ctrl-C, which gives the jobs in flight
back to the queue at once.`

// workerFlags configure the job runner; watch and work share them.
type workerFlags struct {
	enrichWorkers, siteWorkers *int
	refs                       *string
	render                     *bool
	renderUser                 *string
	userAgent                  *string
	captureWorkers             *int
	notifyWorkers              *int
	hostingBootstrap           *string
	retention                  *time.Duration
}

func addWorkerFlags(fs interface {
	Int(string, int, string) *int
	String(string, string, string) *string
	Bool(string, bool, string) *bool
	Duration(string, time.Duration, string) *time.Duration
}) *workerFlags {
	return &workerFlags{
		enrichWorkers:    fs.Int("enrich-workers", 16, "concurrent enrichments (each RDAP and WHOIS server is still paced by --lookup-rate)"),
		siteWorkers:      fs.Int("site-workers", 8, "concurrent site checks"),
		refs:             fs.String("refs", "", "fingerprint library for the site check (see 'helpwatch refs')"),
		render:           fs.Bool("render", false, "site check: render script-built pages in headless Chromium (sandboxed)"),
		renderUser:       fs.String("render-user", "nobody", "site check: the unprivileged user Chromium runs as when helpwatch runs as root"),
		userAgent:        fs.String("user-agent", site.DefaultUserAgent, "User-Agent of site fetches"),
		captureWorkers:   fs.Int("capture-workers", 2, "concurrent captures (each runs a sandboxed Chromium)"),
		notifyWorkers:    fs.Int("notify-workers", jobs.Notify.Workers, "concurrent notification deliveries (with --notify)"),
		hostingBootstrap: fs.String("hosting-bootstrap", "", "capture: IP RDAP bootstrap files, comma-separated paths or URLs (default: IANA's ipv4.json and ipv6.json)"),
		retention:        fs.Duration("evidence-retention", capture.DefaultRetention, "capture: purge captures older than this unless a report cites their case (negative: keep all)"),
	}
}

// runnerSetup is everything a job runner needs, built from the flags.
type runnerSetup struct {
	db       *store.SQL
	rules    *rules.RuleSet
	kinds    []string
	enricher *enrich.Enricher
	fetcher  *site.Fetcher
	renderer *site.Renderer
	library  *site.Library
	drain    bool
	// after makes a case's site check wait for its enrichment (which may be done by another
	// process of a team deployment).
	after bool
	log   *slog.Logger
	// onEnriched and onChecked report progress (called concurrently).
	onEnriched func(c *watcher.Case, en *watcher.Enrichment)
	onChecked  func(c *watcher.Case, checks []store.SiteCheck)
	capturer   *capture.Capturer
	onCaptured func(c *watcher.Case, capture *watcher.Capture)
	// notify is the notification settings (nil: no notifications); guard is the address
	// guard their requests go through.
	notify *notify.Config
	guard  *netguard.Guard
}

// close stops the browser the captures share.
func (s runnerSetup) close() {
	if s.capturer != nil && s.capturer.Renderer != nil {
		s.capturer.Renderer.Close()
	}
}

func (wf *workerFlags) runner(s runnerSetup) *queue.Runner {
	r := &queue.Runner{Store: s.db, Drain: s.drain, Log: s.log, After: s.after}
	// The handler of each registered kind (package jobs), built from this process's flags.
	handlers := map[string]func() queue.Kind{
		jobs.Enrich.Name: func() queue.Kind {
			return (&enrich.Worker{Store: s.db, Enricher: s.enricher, Enriched: s.onEnriched}).Kind(*wf.enrichWorkers)
		},
		jobs.Site.Name: func() queue.Kind {
			return (&site.Worker{Store: s.db, Rules: s.rules, Fetcher: s.fetcher, Renderer: s.renderer, Library: s.library,
				Checked: s.onChecked}).Kind(*wf.siteWorkers)
		},
		jobs.Capture.Name: func() queue.Kind {
			return (&capture.Worker{Store: s.db, Capturer: s.capturer, Retention: *wf.retention, Captured: s.onCaptured}).Kind(*wf.captureWorkers)
		},
		jobs.Notify.Name: func() queue.Kind { return notifySender(s.db, s.notify, s.guard, s.log).Kind(*wf.notifyWorkers) },
	}
	for _, k := range s.kinds {
		r.Kinds = append(r.Kinds, handlers[k]())
	}
	return r
}

// parseKinds reads --kinds.
func parseKinds(v string) ([]string, error) {
	var out []string
	for _, k := range strings.Split(v, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		spec, ok := jobs.Lookup(k)
		if !ok {
			return nil, usageError("--kinds %q: the job kinds are %s", k, strings.Join(jobs.Names(), ", "))
		}
		if !spec.Background() {
			return nil, usageError("--kinds %q: this kind is worked by '%s'", k, spec.WorkedBy)
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, usageError("--kinds is empty: give one or more of %s", strings.Join(jobs.Names(), ", "))
	}
	return out, nil
}

func runWork(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("work", workUsage, stderr)
	loadRules := addRulesFlag(fs)
	ef := addEnrichFlags(fs)
	wf := addWorkerFlags(fs)
	dbPath := dbFlag(fs, "findings database")
	kindsFlag := fs.String("kinds", "enrich,site,capture", "job kinds this process works: enrich, site, capture, notify (with --notify, notify is added; deliveries of abuse reports are sent by 'abuse send')")
	nf := addNotifyFlags(fs)
	drain := fs.Bool("drain", false, "exit once nothing this process can do is due")
	waitEnrich := fs.Bool("wait-enrichment", true, "a case's site check waits until its enrichment is done (by this process or another)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	kinds, err := parseKinds(*kindsFlag)
	if err != nil {
		return err
	}
	ncfg, err := nf.load()
	if err != nil {
		return err
	}
	if ncfg != nil && !slices.Contains(kinds, jobs.Notify.Name) {
		kinds = append(kinds, jobs.Notify.Name)
	}
	if ncfg == nil && slices.Contains(kinds, jobs.Notify.Name) {
		return usageError("--kinds notify needs --notify FILE: the channels are in it")
	}
	return work(workRun{kinds: kinds, drain: *drain, after: *waitEnrich, dbPath: *dbPath, rules: loadRules, ef: ef, wf: wf, notify: ncfg}, stdout, stderr)
}

// workRun is one run of the job runner from the command line.
type workRun struct {
	kinds  []string
	drain  bool
	after  bool
	dbPath string
	// rules is --rules: a process given a rule file other than the deployment's refuses.
	rules rulesFlag
	ef    *enrichFlags
	wf    *workerFlags
	// lines prints one line per stored result on stdout (site check --queue, enrich --queue).
	lines bool
	// notify is --notify (nil: none).
	notify *notify.Config
}

func work(w workRun, stdout, stderr io.Writer) error {
	given, err := w.rules.given()
	if err != nil {
		return err
	}
	db, err := openDB(w.dbPath, dbOpen{rules: given, mustExist: true})
	if err != nil {
		return err
	}
	defer db.Close()
	rs, err := db.Rules()
	if err != nil {
		return err
	}
	log := newLogger(stderr)
	ctx, stop := watchContext()
	defer stop()
	if err := db.QuickCheck(ctx); err != nil {
		return err
	}
	setup, err := w.setup(db, rs, log)
	if err != nil {
		return err
	}
	defer setup.close()
	mu := &lockedWriter{w: stdout}
	if w.lines {
		setup.onEnriched = func(c *watcher.Case, en *watcher.Enrichment) {
			mu.printf("enriched\t%s\t%s\t%s\n", output.Printable(c.Registrable), en.Registration.State, output.Printable(en.Registration.Registrar))
		}
		setup.onChecked = func(c *watcher.Case, checks []store.SiteCheck) {
			for _, sc := range checks {
				mu.printf("%s\t%s\t%d\t%s\n", sc.Verdict, output.Printable(sc.Name), sc.Score, output.Printable(sc.Error))
			}
		}
	}
	if n, err := db.Rescore(ctx); err != nil {
		return err
	} else if n > 0 {
		log.Info("rescored cases with this rule file", "cases", n, "rules", rs.Version)
	}
	runner := w.wf.runner(setup)
	if w.notify != nil {
		sc := &notify.Scanner{Store: db, Config: w.notify}
		if w.drain {
			// A drain looks for events once, then delivers what it found.
			if err := sc.Scan(ctx); err != nil {
				return err
			}
		} else {
			scanCtx, stopScan := context.WithCancel(ctx)
			defer stopScan()
			go sc.Run(scanCtx, 5*time.Second, func(err error) { log.Warn("looking for notification events failed; trying again", "err", err) })
		}
	}
	start := time.Now()
	log.Info("working the job queue", "db", db.Path(), "kinds", strings.Join(w.kinds, ","), "drain", w.drain)
	// Progress every 10 s: a long drain must not be silence.
	progressDone := make(chan struct{})
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-tick.C:
				line := []any{"elapsed", time.Since(start).Round(time.Second)}
				for _, k := range w.kinds {
					c := runner.Counters(k)
					line = append(line, k, fmt.Sprintf("%d done, %d retried, %d failed", c.Done.Load(), c.Retried.Load(), c.Failed.Load()))
				}
				if pending, err := db.PendingJobs(ctx, w.kinds); err == nil {
					line = append(line, "queued", pending)
				}
				log.Info("progress", line...)
			}
		}
	}()
	err = runner.Run(ctx)
	close(progressDone)
	summary := []any{"elapsed", time.Since(start).Round(time.Millisecond)}
	for _, k := range w.kinds {
		c := runner.Counters(k)
		summary = append(summary, k+"_done", c.Done.Load(), k+"_retried", c.Retried.Load(), k+"_failed", c.Failed.Load())
	}
	if pending, perr := db.PendingJobs(context.Background(), w.kinds); perr == nil {
		summary = append(summary, "still_queued", pending)
	}
	log.Info("work done", summary...)
	explainRetries(db, w.kinds, stderr)
	return err
}

// explainRetries says why jobs were retried or failed, grouped by reason, so that a drain that
// left work queued does not keep its reasons in the database only.
func explainRetries(db *store.SQL, kinds []string, stderr io.Writer) {
	problems, err := db.JobProblems(context.Background(), 500)
	if err != nil || len(problems) == 0 {
		return
	}
	type group struct {
		kind, reason string
		n            int
		example      string
	}
	var groups []*group
	for _, p := range problems {
		if !slices.Contains(kinds, p.Kind) {
			continue
		}
		// The same reason for many names: the name is taken out to group them.
		reason := p.LastError
		if p.Registrable != "" {
			reason = strings.ReplaceAll(reason, p.Registrable, "NAME")
		}
		reason = localPort.ReplaceAllString(reason, "") // "read udp 127.0.0.1:59905->": a new port each time
		reason = notificationNumber.ReplaceAllString(reason, "notification N")
		var g *group
		for _, have := range groups {
			if have.kind == p.Kind && have.reason == reason {
				g = have
			}
		}
		if g == nil {
			g = &group{kind: p.Kind, reason: reason, example: p.Registrable}
			groups = append(groups, g)
		}
		g.n++
	}
	if len(groups) == 0 {
		return
	}
	fmt.Fprintln(stderr, "why jobs were retried or failed ('helpwatch jobs' lists them):")
	for i, g := range groups {
		if i == 10 {
			fmt.Fprintf(stderr, "  ... and %d more reasons\n", len(groups)-10)
			break
		}
		fmt.Fprintf(stderr, "  %s x%d (e.g. %s): %s\n", g.kind, g.n, output.Printable(g.example), output.Printable(clipText(g.reason, 160)))
	}
}

var localPort = regexp.MustCompile(`[0-9a-fA-F.:\[\]]+:[0-9]+->`)

var notificationNumber = regexp.MustCompile(`notification [0-9]+`)

func clipText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// setup builds the enricher, fetcher, renderer and library the runner's kinds need.
func (w workRun) setup(db *store.SQL, rs *rules.RuleSet, log *slog.Logger) (runnerSetup, error) {
	s := runnerSetup{db: db, rules: rs, kinds: w.kinds, drain: w.drain, after: w.after, log: log, notify: w.notify}
	guard, err := w.ef.guard.build()
	if err != nil {
		return s, err
	}
	s.guard = guard
	if slices.Contains(w.kinds, jobs.Enrich.Name) {
		if s.enricher, err = w.ef.build(rs, db, guard, log.Info); err != nil {
			return s, err
		}
	}
	if slices.Contains(w.kinds, jobs.Site.Name) || slices.Contains(w.kinds, jobs.Capture.Name) {
		if s.library, err = loadLibrary(*w.wf.refs); err != nil {
			return s, err
		}
		s.fetcher = newSiteFetcher(guard)
		s.fetcher.UserAgent = *w.wf.userAgent
		if *w.wf.render {
			s.renderer = &site.Renderer{User: *w.wf.renderUser}
			if !s.renderer.Available() {
				return s, site.ErrNoBrowser
			}
		}
	}
	if slices.Contains(w.kinds, jobs.Capture.Name) {
		// A capture's screenshot needs Chromium; without one the capture keeps the pages,
		// headers and certificate and says that no screenshot was taken.
		renderer := &site.Renderer{User: *w.wf.renderUser}
		if !renderer.Available() {
			log.Warn("no chromium: captures keep pages, headers and certificates but no screenshots (install Debian's chromium)")
			renderer = nil
		}
		var boots []string
		for _, b := range strings.Split(*w.wf.hostingBootstrap, ",") {
			if b = strings.TrimSpace(b); b != "" {
				boots = append(boots, b)
			}
		}
		s.capturer = &capture.Capturer{Rules: rs, Library: s.library, Fetcher: s.fetcher, Renderer: renderer,
			Hosting: &enrich.Hosting{Bootstraps: boots, Guard: guard, UserAgent: *w.wf.userAgent}}
		s.onCaptured = func(c *watcher.Case, got *watcher.Capture) {
			log.Info("captured", "case", output.Printable(c.Registrable), "verdict", got.Verdict, "cloaked", got.Cloaked, "shots", len(got.Shots))
		}
	}
	return s, nil
}

// lockedWriter serializes the lines workers print concurrently.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}
