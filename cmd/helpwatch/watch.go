package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/metrics"
	"github.com/helpwatch/helpwatch/watcher/notify"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/site"
	"github.com/helpwatch/helpwatch/watcher/source"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/watch"
)

const watchUsage = `usage: helpwatch watch [--source ct|public|URL|FILE] [--db PATH|URL] [--rules FILE] [--min-verdict V]

Follows Certificate Transparency, scores every name, and keeps findings (verdict watch or
alert) in an embedded SQLite file as cases: a registrable domain with every name of it seen in
a certificate. New cases at or above --min-verdict are printed on stdout:
one readable line each on a terminal, JSON lines otherwise. A status line goes to stderr every
--status-every. Stop with Ctrl-C (or SIGTERM): reading stops, what was collected is stored, and
the command exits 0.

Sources:
  ct (the default)   the CT logs themselves, RFC 6962 and static-ct-api (tiled) logs, from the
                     log list (--log-list; 'helpwatch logs' shows which are followed and why).
                     Every tree head's signature and consistency and every entry's inclusion
                     is verified; the position in each log is stored with the findings, so a
                     restart (or a crash) carries on where it stopped, nothing skipped or
                     read twice. A log never read before starts at its head (--backfill 6h or
                     --from-index N to start earlier).
  ws://... wss://... a certstream server (certstream-server-go /, /full-stream, /domains-only;
                     the Python server). The protocol has no replay: what the server loses is
                     counted per log from the gaps in cert_index (status line and metrics).
  public             the public CaliDog certstream (wss://certstream.calidog.io) via
                     certstream-go; down most of the time since 2025
  FILE or -          a replay: certstream messages as JSON lines (what 'helpwatch record'
                     writes) or a plain list of names, one per line

Restarting on the same --db carries on: known names are not reported again, and a certificate
already stored is not counted twice.`

// watchContext is the run's lifetime: until SIGINT or SIGTERM. Tests replace it.
var watchContext = func() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func dateOrUnknown(r watcher.Registration) string {
	if r.Created.IsZero() {
		return string(watcher.Unknown)
	}
	return r.Created.Format(time.DateOnly)
}

// sourceFlags are shared by watch and record.
type sourceFlags struct {
	source      *string
	replaySpeed *float64
	maxFrame    *int64
	// client fetches an nrd: URL (the address guard's); set by the command before open.
	client *http.Client
}

func addSourceFlags(fs *flag.FlagSet, def string) sourceFlags {
	return sourceFlags{
		source:      fs.String("source", def, "ct (the CT logs), public, a ws:// or wss:// certstream URL, a replay file (- for stdin), or nrd:FILE|URL: a list of newly registered domains (one a line, gzip accepted; a URL is fetched again daily)"),
		replaySpeed: fs.Float64("replay-speed", 0, "replays: 0 reads as fast as possible, 1 keeps the recorded pace, 10 is ten times faster"),
		maxFrame:    fs.Int64("max-frame", source.MaxFrameBytes, "largest certstream frame accepted, in bytes"),
	}
}

func (sf sourceFlags) open(log *slog.Logger, raw func([]byte)) (watcher.Source, error) {
	s := strings.TrimSpace(*sf.source)
	switch {
	case s == "ct":
		return nil, usageError("--source ct: recording needs a certstream source (public or a ws:// URL); a watch reads the CT logs itself")
	case s == "public":
		return &source.Public{Log: log, MaxFrame: *sf.maxFrame, Raw: raw}, nil
	case strings.HasPrefix(s, "nrd:"):
		n := &source.NRD{Location: strings.TrimPrefix(s, "nrd:"), Client: sf.client, Log: log}
		switch {
		case raw != nil:
			return nil, usageError("--source %q: recording needs a certstream source", s)
		case n.Location == "":
			return nil, usageError("--source nrd: needs a file or an http(s) URL: nrd:FILE or nrd:URL")
		case n.IsURL():
			if u, err := url.Parse(n.Location); err != nil || u.Host == "" || sf.client == nil {
				return nil, usageError("--source %q is not a usable URL", s)
			}
		default:
			if _, err := os.Stat(n.Location); err != nil {
				return nil, fmt.Errorf("--source: %w", err)
			}
		}
		return n, nil
	case strings.HasPrefix(s, "ws://") || strings.HasPrefix(s, "wss://"):
		if u, err := url.Parse(s); err != nil || u.Host == "" {
			return nil, usageError("--source %q is not a usable websocket URL", s)
		}
		return &source.Stream{URL: s, Log: log, MaxFrame: *sf.maxFrame, Raw: raw}, nil
	case strings.Contains(s, "://"):
		return nil, usageError("--source %q: only ws:// and wss:// URLs are certstream servers", s)
	case s == "":
		return nil, usageError("--source is empty")
	}
	if raw != nil {
		return nil, usageError("--source %q: recording needs a live source (public or a ws:// URL)", s)
	}
	if s != "-" {
		if _, err := os.Stat(s); err != nil {
			return nil, fmt.Errorf("--source: %w", err)
		}
	}
	return &source.Replay{Path: s, Speed: *sf.replaySpeed, MaxGap: 10 * time.Second, Log: log}, nil
}

func newLogger(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// isTerminal reports whether w is a character device (a person is reading).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func runWatch(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("watch", watchUsage, stderr)
	sf := addSourceFlags(fs, "ct")
	cf := addCTFlags(fs)
	loadRules := addRulesFlag(fs)
	dbPath := fs.String("db", store.DefaultPath, "findings database: a SQLite file (created if missing) or a postgres:// URL (a team's shared database; the password from PGPASSWORD or a PGPASSFILE, never in the URL on a shared machine)")
	minVerdict := fs.String("min-verdict", "watch", "print new findings at or above this verdict: alert or watch")
	format := fs.String("format", "auto", "how new findings are printed: auto (line on a terminal, jsonl otherwise), line, jsonl")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus /metrics and /healthz on this address (e.g. 127.0.0.1:9410)")
	staleAfter := fs.Duration("stale-after", 2*time.Minute, "/healthz fails when no frame arrived for this long")
	statusEvery := fs.Duration("status-every", 30*time.Second, "interval of the status line on stderr (0 turns it off)")
	dedupeSize := fs.Int("dedupe-size", 1<<17, "names remembered to skip repeats (about 150 bytes each)")
	doEnrich := fs.Bool("enrich", true, "enrich cases in the background (DNS, RDAP, WHOIS)")
	doSite := fs.Bool("site-check", true, "fetch each case's sites and check what they show (re-checked at 1 h, 6 h, 24 h and 3 days while down)")
	wf := addWorkerFlags(fs)
	ef := addEnrichFlags(fs)
	nf := addNotifyFlags(fs)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q (the source goes in --source)", rest[0])
	}
	emitMin, err := rules.ParseVerdict(*minVerdict)
	if err != nil || emitMin.Rank() < rules.VerdictWatch.Rank() {
		return usageError("--min-verdict %q: use alert or watch", *minVerdict)
	}
	if *format == "auto" {
		*format = "jsonl"
		if isTerminal(stdout) {
			*format = "line"
		}
	}
	if *format != "jsonl" && *format != "line" {
		return usageError("--format %q: use auto, line or jsonl", *format)
	}
	// Signals are caught from here on: a stop during start-up still ends cleanly.
	ctx, stop := watchContext()
	defer stop()
	log := newLogger(stderr)
	followCT := strings.TrimSpace(*sf.source) == "ct"
	guard, err := ef.guard.build()
	if err != nil {
		return err
	}
	var src watcher.Source
	if !followCT {
		sf.client = guard.HTTPClient(5*time.Minute, 3)
		if src, err = sf.open(log, nil); err != nil {
			return err
		}
	}
	given, err := loadRules.given()
	if err != nil {
		return err
	}
	db, err := openDB(*dbPath, dbOpen{ctx: ctx, rules: given})
	if err != nil {
		return err
	}
	defer db.Close()
	rs, err := db.Rules()
	if err != nil {
		return err
	}
	// A damaged file is said now, before a single certificate is read, not when the first
	// batch fails to store.
	if err := db.QuickCheck(ctx); err != nil {
		return err
	}
	var logs *ctlog.Source
	if followCT {
		if logs, err = cf.source(guard, db, log); err != nil {
			return err
		}
		src = logs
	}

	health := &metrics.Health{Stats: &watcher.Stats{}, StaleAfter: *staleAfter, Started: time.Now()}
	if logs != nil {
		health.Logs, health.LagLimit = logs.Status, *cf.lagLimit
	}
	var metricsLn net.Listener
	if *metricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", *metricsAddr); err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
	}
	out, err := output.NewCaseWriter(stdout, *format)
	if err != nil {
		return err
	}
	var writeErr error
	emit := func(c *watcher.Case) {
		if c.Verdict().Rank() < emitMin.Rank() || writeErr != nil {
			return
		}
		if writeErr = out.Write(c); writeErr == nil {
			writeErr = out.Flush()
		}
	}
	ncfg, err := nf.load()
	if err != nil {
		return err
	}
	// Every registered kind is worked unless its flag turns it off.
	off := map[string]bool{jobs.Enrich.Name: !*doEnrich, jobs.Site.Name: !*doSite, jobs.Capture.Name: !*doSite, jobs.Notify.Name: ncfg == nil}
	var kinds []string
	for _, k := range jobs.All {
		if k.Background() && !off[k.Name] {
			kinds = append(kinds, k.Name)
		}
	}
	var runner *queue.Runner
	if len(kinds) > 0 {
		setup, err := workRun{kinds: kinds, after: *doEnrich, ef: ef, wf: wf, notify: ncfg}.setup(db, rs, log)
		if err != nil {
			return err
		}
		defer setup.close()
		setup.onEnriched = func(c *watcher.Case, en *watcher.Enrichment) {
			log.Info("enriched", "case", output.Printable(c.Registrable), "registered", dateOrUnknown(en.Registration),
				"registrar", output.Printable(en.Registration.Registrar), "dns", en.Lookups())
		}
		setup.onChecked = func(c *watcher.Case, checks []store.SiteCheck) {
			log.Info("site checked", "case", output.Printable(c.Registrable), "sites", output.Printable(site.Summary(checks)))
		}
		runner = wf.runner(setup)
	}

	if ncfg != nil {
		// Events are looked for beside the pipeline; the CT logs' state comes from the source.
		sc := &notify.Scanner{Store: db, Config: ncfg, Logs: health.Logs}
		scanCtx, stopScan := context.WithCancel(ctx)
		defer stopScan()
		go sc.Run(scanCtx, 5*time.Second, func(err error) { log.Warn("looking for notification events failed; trying again", "err", err) })
	}
	log.Info("watching", "source", src.String(), "db", db.Path(), "rules", rs.Version, "enrich", *doEnrich, "site_check", *doSite)
	res, runErr := watch.Run(ctx, watch.Config{
		Source: src, Store: db, Log: log, Workers: runner, Emit: emit, Health: health, Metrics: metricsLn,
		StatusEvery: *statusEvery, DedupeSize: *dedupeSize, ShutdownBudget: 2 * time.Second, SpillDir: spillDir(*dbPath),
	})
	out.Flush()
	if _, replay := src.(*source.Replay); res.Pending > 0 && replay {
		log.Info("the replay ended before every case was enriched and checked; the rest stays queued",
			"queued", res.Pending, "finish_with", selfCommand()+" work --drain --db "+db.Path())
	}
	if runErr != nil {
		return runErr
	}
	if writeErr != nil && !errors.Is(writeErr, os.ErrClosed) {
		return fmt.Errorf("writing findings to stdout: %w (they are stored in %s)", writeErr, db.Path())
	}
	return nil
}

// selfCommand is how the user started helpwatch, for hints they can paste: "helpwatch" for an
// installed binary, "go run ./cmd/helpwatch" when started with go run (the binary then lives
// in a temporary build directory and has no name on the PATH).
func selfCommand() string {
	exe := os.Args[0]
	if strings.Contains(exe, string(os.PathSeparator)+"go-build") {
		return "go run ./cmd/helpwatch"
	}
	if strings.ContainsRune(exe, os.PathSeparator) {
		if found, err := exec.LookPath("helpwatch"); err != nil || found != exe {
			return exe
		}
	}
	return "helpwatch"
}

// spillDir is where a stopped watch writes what it could not store: beside the SQLite file,
// or in the working directory for a PostgreSQL database.
func spillDir(db string) string {
	if store.IsPostgresURL(db) {
		return "."
	}
	return filepath.Dir(db)
}
