package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/netguard"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// ctFlags choose and pace the CT logs a watch follows (and `helpwatch logs` shows).
type ctFlags struct {
	list        *string
	logs        *string
	exclude     *string
	backfill    *time.Duration
	fromIndex   *int64
	maxValidity *time.Duration
	rate        *float64
	parallel    *int
	poll        *time.Duration
	lagLimit    *time.Duration
	takeover    *time.Duration
}

func addCTFlags(fs *flag.FlagSet) *ctFlags {
	return &ctFlags{
		list:        fs.String("log-list", "", "CT log list v3 (Google's log_list.json format) as a FILE or an https URL; a URL is fetched again every day (default: the built-in "+ctlog.BuiltinListVersion+")"),
		logs:        fs.String("logs", "", "follow only these logs: names, \"operator name\" titles or URLs, comma-separated ('helpwatch logs' lists them)"),
		exclude:     fs.String("exclude-logs", "", "do not follow these logs (same forms as --logs)"),
		backfill:    addDurationFlag(fs, "backfill", 0, "a log never read before starts this far back (6h, 2d) instead of at its head"),
		fromIndex:   fs.Int64("from-index", -1, "a log never read before starts at this entry index instead of at its head (with --logs to pick the log)"),
		maxValidity: addDurationFlag(fs, "max-validity", ctlog.MaxValidity, "longest certificate lifetime: logs whose interval starts later than this from now cannot hold today's certificates"),
		rate:        fs.Float64("log-rate", 20, "requests per second to one CT log (0: no limit)"),
		parallel:    fs.Int("log-parallel", 4, "requests in flight to one CT log"),
		poll:        fs.Duration("log-poll", 0, "how often a caught-up log is asked for a new tree head (0: each kind's default: 1s for a static-ct-api checkpoint, asked conditionally; 2s for an RFC 6962 get-sth)"),
		lagLimit:    fs.Duration("log-lag-limit", 15*time.Minute, "/healthz fails when every followed log lags more than this"),
		takeover:    fs.Duration("log-takeover", 30*time.Second, "on a shared PostgreSQL --db, how often a watch process tries to take over the logs another one follows (each log is read by one process at a time)"),
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// config turns the flags into a source configuration; the list is loaded now, so that a bad
// file or URL is said before anything else starts. A store that can lease logs (PostgreSQL)
// makes several watch processes share them.
func (cf *ctFlags) config(guard *netguard.Guard, positions ctlog.PositionStore, log *slog.Logger) (ctlog.Config, error) {
	if *cf.rate < 0 || *cf.parallel < 1 {
		return ctlog.Config{}, usageError("--log-rate must not be negative and --log-parallel must be at least 1")
	}
	transport := guard.HTTPClient(30*time.Second, 3).Transport
	cfg := ctlog.Config{
		Filter:     ctlog.Filter{Only: splitList(*cf.logs), Exclude: splitList(*cf.exclude), MaxValidity: *cf.maxValidity},
		Transport:  transport,
		Politeness: ctlog.Politeness{Rate: *cf.rate, Parallel: *cf.parallel},
		Poll:       *cf.poll,
		Backfill:   *cf.backfill,
		Positions:  positions,
		LeaseRetry: *cf.takeover,
		Log:        log,
		UserAgent:  "helpwatch/" + strings.Fields(buildVersion())[0] + " (CT monitor)",
	}
	if lease, ok := positions.(ctlog.LogLease); ok {
		cfg.Lease = lease
	}
	if *cf.fromIndex >= 0 {
		cfg.FromIndex = cf.fromIndex
	}
	if *cf.list != "" {
		l, err := ctlog.LoadList(*cf.list, &http.Client{Transport: transport, Timeout: time.Minute})
		if err != nil {
			return cfg, fmt.Errorf("--log-list: %w", err)
		}
		cfg.List = l
		if strings.HasPrefix(*cf.list, "http://") || strings.HasPrefix(*cf.list, "https://") {
			cfg.ListURL = *cf.list
		}
	}
	return cfg, nil
}

func (cf *ctFlags) source(guard *netguard.Guard, positions ctlog.PositionStore, log *slog.Logger) (*ctlog.Source, error) {
	cfg, err := cf.config(guard, positions, log)
	if err != nil {
		return nil, err
	}
	src, err := ctlog.New(cfg)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return src, nil
}

const logsUsage = `usage: helpwatch logs [--log-list FILE|URL] [--logs NAMES] [--db PATH|URL] [--offline] [--format table|json]

Lists the CT logs of the log list: which ones 'helpwatch watch' follows and why (state, and
whether the log's interval of certificate expiries can hold a certificate issued today), the
position stored in --db for each, and, unless --offline, each followed log's newest tree head
(its signature checked) and how far the stored position lags behind it.`

func runLogs(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("logs", logsUsage, stderr)
	cf := addCTFlags(fs)
	gf := addGuardFlags(fs)
	dbPath := fs.String("db", "", "findings database whose stored positions to show (default: the watch's default, when it exists)")
	offline := fs.Bool("offline", false, "do not contact the logs; show the list and the stored positions only")
	format := fs.String("format", "table", "table or json")
	timeout := fs.Duration("timeout", 15*time.Second, "time limit for asking all logs for their heads")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	if *format != "table" && *format != "json" {
		return usageError("--format %q: use table or json", *format)
	}
	guard, err := gf.build()
	if err != nil {
		return err
	}
	positions, dbShown, err := storedPositions(*dbPath)
	if err != nil {
		return err
	}
	src, err := cf.source(guard, nil, newLogger(stderr))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	statuses := ctlog.Heads(ctx, src, positions, !*offline)
	if dbShown == "" {
		fmt.Fprintf(stderr, "no findings database at %s: no stored positions to show (pass --db)\n", store.DefaultPath)
	}
	return output.WriteLogs(stdout, *format, statuses, time.Now())
}

// storedPositions reads the positions in the database at path (default: the watch's default
// file, when there is one). dbShown is the file read, empty when none.
func storedPositions(path string) (positions []watcher.LogPosition, dbShown string, err error) {
	if path == "" {
		if _, err := os.Stat(store.DefaultPath); err != nil {
			return nil, "", nil
		}
		path = store.DefaultPath
	}
	db, err := openExistingDB(path)
	if err != nil {
		return nil, "", err
	}
	defer db.Close()
	positions, err = db.LogPositions(context.Background())
	return positions, path, err
}
