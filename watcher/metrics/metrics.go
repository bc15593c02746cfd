// Package metrics reports a running watch: a status line on the log every interval, and
// Prometheus /metrics with a /healthz that fails when the stream has gone quiet.
package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// LogStatus writes one status line every interval until ctx is done: rates since the last
// line, totals, how long ago the last frame arrived, and (with h.Jobs) the job queue.
func LogStatus(ctx context.Context, h *Health, log *slog.Logger, interval time.Duration) {
	stats := h.Stats
	t := time.NewTicker(interval)
	defer t.Stop()
	prevMsgs, prevNames := stats.Messages.Load(), stats.Names.Load()+stats.Duplicates.Load()
	prevAt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			msgs, names := stats.Messages.Load(), stats.Names.Load()+stats.Duplicates.Load()
			secs := now.Sub(prevAt).Seconds()
			attrs := []any{
				"messages_per_s", round1(float64(msgs-prevMsgs) / secs),
				"names_per_s", round1(float64(names-prevNames) / secs),
				"messages", msgs, "new_cases", stats.Findings.Load(),
				"reconnects", stats.Reconnects.Load(), "dropped", stats.Dropped.Load(),
				"malformed", stats.Malformed.Load() + stats.Oversized.Load(),
				"last_message_age", Age(stats.LastFrame(), now)}
			if h.Logs != nil {
				attrs = append(attrs, LogSummary(h.Logs(), now, h.Started, h.LagLimit)...)
			}
			if missed := stats.Gaps.Total(); missed > 0 {
				attrs = append(attrs, "certstream_missed_entries", missed)
			}
			for _, k := range h.JobStats() {
				attrs = append(attrs, k.Kind+"_queued", k.Queued, k.Kind+"_running", k.Running, k.Kind+"_done", k.Done, k.Kind+"_failed", k.Failed)
			}
			log.Info("status", attrs...)
			prevMsgs, prevNames, prevAt = msgs, names, now
		}
	}
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// Age renders how long ago t was, or "never".
func Age(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(100 * time.Millisecond).String()
}

// JobSource reports the job queue's numbers per kind (the store implements it).
type JobSource interface {
	JobStats(ctx context.Context, now time.Time) ([]store.KindStats, error)
}

// Health decides /healthz: healthy until no frame has arrived for StaleAfter. A watch that
// never received anything is unhealthy once StaleAfter has passed since it started. Jobs, when
// set, adds the job queue's numbers to /metrics and the status line.
//
// With Logs set (a watch following CT logs), frames do not count: the watch is unhealthy when
// every log it follows lags more than LagLimit (a quiet log is not a broken watch, but all of
// them behind is).
type Health struct {
	Stats      *watcher.Stats
	StaleAfter time.Duration
	Started    time.Time
	Jobs       JobSource
	Logs       func() []watcher.LogStatus
	LagLimit   time.Duration
	done       atomic.Bool

	jobsMu    sync.Mutex
	jobsAt    time.Time
	jobsCache []store.KindStats
}

// JobStats returns the queue's numbers, read at most every 5 s (a scrape must not load the
// database).
func (h *Health) JobStats() []store.KindStats {
	if h.Jobs == nil {
		return nil
	}
	h.jobsMu.Lock()
	defer h.jobsMu.Unlock()
	if time.Since(h.jobsAt) < 5*time.Second && h.jobsCache != nil {
		return h.jobsCache
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := h.Jobs.JobStats(ctx, time.Now()); err == nil {
		h.jobsCache, h.jobsAt = st, time.Now()
	}
	return h.jobsCache
}

// Finished marks a finite source (a replay) as done: it is healthy, not stale.
func (h *Health) Finished() { h.done.Store(true) }

func (h *Health) check(now time.Time) (bool, string) {
	if h.done.Load() {
		return true, "source finished"
	}
	if h.Logs != nil {
		return h.checkLogs(now)
	}
	last := h.Stats.LastFrame()
	if last.IsZero() {
		if now.Sub(h.Started) > h.StaleAfter {
			return false, fmt.Sprintf("no message since start %s ago", now.Sub(h.Started).Round(time.Second))
		}
		return true, "starting"
	}
	if age := now.Sub(last); age > h.StaleAfter {
		return false, fmt.Sprintf("last message %s ago (limit %s)", age.Round(time.Second), h.StaleAfter)
	}
	return true, "last message " + Age(last, now) + " ago"
}

func (h *Health) checkLogs(now time.Time) (bool, string) {
	logs := h.Logs()
	following, behind := 0, 0
	var worst time.Duration
	var worstName string
	var headless []string // followed logs that never gave a verified head, and why
	for i := range logs {
		l := &logs[i]
		if l.Final || l.Standby {
			continue
		}
		following++
		if l.TreeTime.IsZero() {
			// Not "within" anything: nothing is known of this log yet. At start, a moment
			// without a head is normal; an error or a Retry-After is said at once.
			if l.LastError != "" || !l.RetryAt.IsZero() || now.Sub(h.Started) > headGrace {
				headless = append(headless, headlessWhy(l, now))
			}
			behind++
			continue
		}
		lag := l.Lag(now, h.Started)
		if lag > h.LagLimit {
			behind++
		}
		if lag > worst || worstName == "" {
			worst, worstName = lag, l.Name
		}
	}
	var noHead string
	if len(headless) > 0 {
		shown := headless[:min(len(headless), 3)]
		noHead = fmt.Sprintf("no tree head from %d: %s", len(headless), strings.Join(shown, "; "))
		if len(headless) > len(shown) {
			noHead += fmt.Sprintf("; and %d more ('helpwatch logs')", len(headless)-len(shown))
		}
	}
	switch {
	case following == 0:
		return true, "no CT log to read here (read-only logs read to their final heads, or followed by another watch process)"
	case worstName == "" && len(headless) == 0:
		return true, "starting: no CT log has given a tree head yet"
	case behind == following:
		why := fmt.Sprintf("none of %d CT logs within %s", following, h.LagLimit)
		if worstName != "" {
			why += fmt.Sprintf(" (%s: %s)", worstName, worst.Round(time.Second))
		}
		if noHead != "" {
			why += "; " + noHead
		}
		return false, why
	}
	why := fmt.Sprintf("%d of %d CT logs within %s; most behind: %s %s", following-behind, following, h.LagLimit, worstName, worst.Round(time.Second))
	if noHead != "" {
		return true, "degraded: " + why + "; " + noHead
	}
	return true, why
}

// headGrace is how long after start a followed log may have given no head without it being
// said in /healthz.
const headGrace = time.Minute

func headlessWhy(l *watcher.LogStatus, now time.Time) string {
	switch {
	case !l.RetryAt.IsZero():
		return fmt.Sprintf("%s asks to wait %s more (Retry-After)", l.Name, max(l.RetryAt.Sub(now), 0).Round(time.Second))
	case l.LastError != "":
		return l.Name + ": " + watcher.Clean(l.LastError, 120)
	}
	return l.Name + ": no answer yet"
}

// LogSummary condenses the followed logs for the status line.
func LogSummary(logs []watcher.LogStatus, now, started time.Time, limit time.Duration) []any {
	behind, headless := 0, 0
	var lagEntries, verify, httpErrs, malformed int64
	var worst time.Duration
	for i := range logs {
		lag := logs[i].Lag(now, started)
		if !logs[i].Final && lag > limit {
			behind++
		}
		worst = max(worst, lag)
		if logs[i].TreeTime.IsZero() && !logs[i].Final && !logs[i].Standby {
			headless++
		}
		malformed += logs[i].Malformed
		lagEntries += logs[i].LagEntries()
		verify += logs[i].VerifyFailures
		httpErrs += logs[i].HTTPErrors
	}
	return []any{"ct_logs", len(logs), "ct_logs_behind", behind, "ct_lag_entries", lagEntries,
		"ct_lag_max", worst.Round(time.Second).String(), "ct_verify_failures", verify, "ct_http_errors", httpErrs,
		"ct_logs_without_head", headless, "ct_malformed_entries", malformed}
}

func (h *Health) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ok, why := h.check(time.Now())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "unhealthy:", why)
		return
	}
	if strings.HasPrefix(why, "degraded: ") {
		// Still 200: the watch works and restarting it would not make a log answer.
		fmt.Fprintln(w, why)
		return
	}
	fmt.Fprintln(w, "ok:", why)
}

// Handler serves /metrics (the counters as Prometheus metrics, plus Go and process metrics)
// and /healthz.
func Handler(h *Health) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := h.Stats
	counter := func(name, help string, v *atomic.Int64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "helpwatch", Name: name, Help: help},
			func() float64 { return float64(v.Load()) }))
	}
	counter("messages_total", "Certificate and names messages decoded.", &s.Messages)
	counter("heartbeats_total", "Heartbeat messages received.", &s.Heartbeats)
	counter("malformed_total", "Frames or lines that did not decode.", &s.Malformed)
	counter("oversized_total", "Frames or lines over the size limit.", &s.Oversized)
	counter("connects_total", "Successful connections to the certstream server.", &s.Connects)
	counter("reconnects_total", "Lost connections and failed dials.", &s.Reconnects)
	counter("names_scored_total", "Names scored (after dedupe).", &s.Names)
	counter("names_duplicate_total", "Names answered from the dedupe cache.", &s.Duplicates)
	counter("dropped_events_total", "Events dropped because the pipeline fell behind the live source.", &s.Dropped)
	counter("findings_total", "New findings stored.", &s.Findings)
	counter("store_errors_total", "Failed store writes (retried).", &s.StoreErrs)
	reg.MustRegister(&jobCollector{h: h}, &logCollector{h: h})
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "helpwatch", Name: "last_message_age_seconds",
		Help: "Seconds since the last frame arrived (-1 before the first)."}, func() float64 {
		last := s.LastFrame()
		if last.IsZero() {
			return -1
		}
		return time.Since(last).Seconds()
	}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/healthz", h)
	return mux
}

// jobCollector exports the queue's numbers per kind: queued (due now), scheduled (later),
// running, done, failed, retried, and the age of the oldest due job.
type jobCollector struct{ h *Health }

var (
	jobsDesc = prometheus.NewDesc("helpwatch_jobs", "Jobs in the queue by kind and state (queued is due now, scheduled is due later).",
		[]string{"kind", "state"}, nil)
	jobsRetriedDesc = prometheus.NewDesc("helpwatch_jobs_retried_total", "Retries of jobs so far, by kind.", []string{"kind"}, nil)
	jobsOldestDesc  = prometheus.NewDesc("helpwatch_jobs_oldest_queued_seconds", "Age of the oldest due job, by kind.", []string{"kind"}, nil)
)

func (c *jobCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- jobsRetriedDesc
	ch <- jobsOldestDesc
}

func (c *jobCollector) Collect(ch chan<- prometheus.Metric) {
	for _, k := range c.h.JobStats() {
		for state, n := range map[string]int{"queued": k.Queued, "scheduled": k.Scheduled, "running": k.Running, "done": k.Done, "failed": k.Failed} {
			ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), k.Kind, state)
		}
		ch <- prometheus.MustNewConstMetric(jobsRetriedDesc, prometheus.CounterValue, float64(k.Retried), k.Kind)
		ch <- prometheus.MustNewConstMetric(jobsOldestDesc, prometheus.GaugeValue, k.OldestAge, k.Kind)
	}
}

// logCollector exports, per CT log followed, its position and lag, and, per log a certstream
// server reports, the entries it skipped.
type logCollector struct{ h *Health }

var (
	logEntriesDesc   = prometheus.NewDesc("helpwatch_ct_log_entries_total", "Entries read from the CT log in this run.", []string{"log"}, nil)
	logRateDesc      = prometheus.NewDesc("helpwatch_ct_log_entries_per_second", "Recent entries read per second from the CT log.", []string{"log"}, nil)
	logTreeDesc      = prometheus.NewDesc("helpwatch_ct_log_tree_size", "Size of the newest verified tree head.", []string{"log"}, nil)
	logNextDesc      = prometheus.NewDesc("helpwatch_ct_log_next_index", "Next entry to read.", []string{"log"}, nil)
	logLagDesc       = prometheus.NewDesc("helpwatch_ct_log_lag_entries", "Entries of the newest verified head not read yet.", []string{"log"}, nil)
	logLagSecDesc    = prometheus.NewDesc("helpwatch_ct_log_lag_seconds", "Age of the newest verified head when caught up, of the newest entry read when behind.", []string{"log"}, nil)
	logVerifyDesc    = prometheus.NewDesc("helpwatch_ct_log_verification_failures_total", "Tree heads or entries refused because they do not verify (bad signature, shrunk or forked tree, entries not in the tree).", []string{"log"}, nil)
	logHTTPDesc      = prometheus.NewDesc("helpwatch_ct_log_http_errors_total", "Failed requests to the CT log (HTTP errors, refused or timed-out connections), per attempt.", []string{"log"}, nil)
	logMalformedDesc = prometheus.NewDesc("helpwatch_ct_log_malformed_entries_total", "Entries in the CT log's tree that could not be read, skipped.", []string{"log"}, nil)
	logRetryAtDesc   = prometheus.NewDesc("helpwatch_ct_log_retry_after_seconds", "Seconds until the CT log, having asked to wait (Retry-After), is asked again; 0 when it has not.", []string{"log"}, nil)
	gapDesc          = prometheus.NewDesc("helpwatch_certstream_missed_entries_total", "Entries of a CT log the certstream server never sent (jumps in its cert_index).", []string{"log"}, nil)
)

func (c *logCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{logEntriesDesc, logRateDesc, logTreeDesc, logNextDesc, logLagDesc, logLagSecDesc, logVerifyDesc, logHTTPDesc, logMalformedDesc, logRetryAtDesc, gapDesc} {
		ch <- d
	}
}

func (c *logCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	if c.h.Logs != nil {
		for _, l := range c.h.Logs() {
			for d, v := range map[*prometheus.Desc]float64{logRateDesc: l.Rate, logTreeDesc: float64(l.TreeSize), logNextDesc: float64(l.Next),
				logLagDesc: float64(l.LagEntries()), logLagSecDesc: l.Lag(now, c.h.Started).Seconds()} {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l.Name)
			}
			ch <- prometheus.MustNewConstMetric(logEntriesDesc, prometheus.CounterValue, float64(l.Entries), l.Name)
			ch <- prometheus.MustNewConstMetric(logVerifyDesc, prometheus.CounterValue, float64(l.VerifyFailures), l.Name)
			ch <- prometheus.MustNewConstMetric(logHTTPDesc, prometheus.CounterValue, float64(l.HTTPErrors), l.Name)
			ch <- prometheus.MustNewConstMetric(logMalformedDesc, prometheus.CounterValue, float64(l.Malformed), l.Name)
			retryIn := 0.0
			if !l.RetryAt.IsZero() {
				retryIn = max(l.RetryAt.Sub(now).Seconds(), 0)
			}
			ch <- prometheus.MustNewConstMetric(logRetryAtDesc, prometheus.GaugeValue, retryIn, l.Name)
		}
	}
	for name, missed := range c.h.Stats.Gaps.Missed() {
		ch <- prometheus.MustNewConstMetric(gapDesc, prometheus.CounterValue, float64(missed), watcher.Clean(name, 200))
	}
}
