// Package watch runs one watch, as certspotter's monitor.Run does: the pipeline from a source
// to the store, the job runner beside it, the metrics and the status line, stopped together.
// The command builds a Config from its flags and calls Run; nothing here knows a flag.
//
// It is a package of its own, not package watcher, because every stage it starts imports the
// types package watcher holds.
package watch

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/metrics"
	"github.com/helpwatch/helpwatch/watcher/pipeline"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Config is one watch: what it reads, where it keeps what it finds, and the work beside it.
type Config struct {
	Source watcher.Source
	// Store keeps the cases; its rule set (the deployment's) scores them.
	Store *store.SQL
	Log   *slog.Logger
	// Workers is the job runner worked beside the pipeline until it stops (nil: the jobs stay
	// queued for `work`).
	Workers *queue.Runner
	// Emit is called with each new case once it is stored.
	Emit func(*watcher.Case)
	// Health carries the run's counters and what /healthz judges (Stats is made when nil).
	Health *metrics.Health
	// Metrics, when set, serves /metrics and /healthz until the watch ends.
	Metrics net.Listener
	// StatusEvery is the interval of the status line (0: none).
	StatusEvery time.Duration
	// DedupeSize, ShutdownBudget and SpillDir go to the pipeline (pipeline.Config).
	DedupeSize     int
	ShutdownBudget time.Duration
	SpillDir       string
}

// Result is what a finished watch did.
type Result struct {
	Stats *watcher.Stats
	// Pending counts the jobs still queued or running when it stopped.
	Pending int
	// Rescored counts the stored cases rescored at start because another rule set made them.
	Rescored int
	Elapsed  time.Duration
}

// Run watches until the source ends (a replay read to its end and stored) or ctx is done (a
// signal: reading stops, what was read is stored or said to be lost, the workers give their
// jobs back). Errors are the pipeline's; a worker failure is logged, not returned, since what
// the watch stored is unaffected.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	health := cfg.Health
	if health == nil {
		health = &metrics.Health{Started: time.Now()}
	}
	if health.Stats == nil {
		health.Stats = &watcher.Stats{}
	}
	res.Stats = health.Stats
	rs, err := cfg.Store.Rules()
	if err != nil {
		return res, err
	}
	if res.Rescored, err = cfg.Store.Rescore(ctx); err != nil {
		return res, err
	}
	if res.Rescored > 0 {
		log.Info("rescored stored cases with the deployment's rule set", "cases", res.Rescored, "rules", rs.Version)
	}
	if cfg.Metrics != nil {
		srv := &http.Server{Handler: metrics.Handler(health), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(cfg.Metrics)
		defer srv.Close()
		log.Info("serving metrics", "addr", cfg.Metrics.Addr().String())
	}
	if cfg.StatusEvery > 0 {
		statusCtx, stopStatus := context.WithCancel(ctx)
		defer stopStatus()
		go metrics.LogStatus(statusCtx, health, log, cfg.StatusEvery)
	}

	// The job queue is worked beside the pipeline; it stops with the pipeline (a finished
	// replay, or a signal), and what it had not done stays queued for the next run.
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	workDone := make(chan error, 1)
	if cfg.Workers != nil {
		health.Jobs = cfg.Store
		go func() { workDone <- cfg.Workers.Run(workCtx) }()
	} else {
		workDone <- nil
	}

	started := time.Now()
	runErr := pipeline.Run(ctx, cfg.Source, pipeline.Config{
		Rules: rs, Store: cfg.Store, Stats: health.Stats, Log: log, Emit: cfg.Emit, DedupeSize: cfg.DedupeSize,
		ShutdownBudget: cfg.ShutdownBudget, SpillDir: cfg.SpillDir,
	})
	stopWork()
	if err := <-workDone; err != nil && !errors.Is(err, context.Canceled) {
		log.Error("the job workers stopped with an error", "err", err)
	}
	res.Pending, _ = cfg.Store.PendingJobs(context.WithoutCancel(ctx), jobs.Names())
	health.Finished()
	res.Elapsed = time.Since(started)
	stats := health.Stats
	log.Info("stopped",
		"messages", stats.Messages.Load(), "names", stats.Names.Load()+stats.Duplicates.Load(),
		"new_findings", stats.Findings.Load(), "dropped", stats.Dropped.Load(),
		"malformed", stats.Malformed.Load(), "oversized", stats.Oversized.Load(),
		"reconnects", stats.Reconnects.Load(), "jobs_queued", res.Pending,
		"elapsed", res.Elapsed.Round(time.Millisecond),
		"messages_per_s", int64(float64(stats.Messages.Load())/max(res.Elapsed.Seconds(), 1e-3)))
	return res, runErr
}
