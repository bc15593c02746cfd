package metrics

import (
	"context"
	"github.com/helpwatch/helpwatch/watcher/testkit"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

func get(t *testing.T, h *Health, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(h).ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestHealthzFollowsTheLastFrame(t *testing.T) {
	stats := &watcher.Stats{}
	h := &Health{Stats: stats, StaleAfter: time.Minute, Started: time.Now()}
	if code, body := get(t, h, "/healthz"); code != 200 || !strings.Contains(body, "starting") {
		t.Errorf("fresh watch: %d %q", code, body)
	}
	h.Started = time.Now().Add(-2 * time.Minute)
	if code, body := get(t, h, "/healthz"); code != 503 || !strings.Contains(body, "no message since start") {
		t.Errorf("nothing ever received: %d %q", code, body)
	}
	stats.Touch()
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("just received a frame: %d", code)
	}
	h.StaleAfter = time.Nanosecond // the frame above is older than that by the time of the request
	if code, body := get(t, h, "/healthz"); code != 503 || !strings.Contains(body, "last message") {
		t.Errorf("stale stream: %d %q", code, body)
	}
	h.Finished()
	if code, _ := get(t, h, "/healthz"); code != 200 {
		t.Errorf("finished replay: %d", code)
	}
}

func TestMetricsExposeCounters(t *testing.T) {
	stats := &watcher.Stats{}
	stats.Messages.Add(42)
	stats.Dropped.Add(3)
	stats.Reconnects.Add(2)
	code, body := get(t, &Health{Stats: stats, StaleAfter: time.Minute, Started: time.Now()}, "/metrics")
	for _, want := range []string{"helpwatch_messages_total 42", "helpwatch_dropped_events_total 3", "helpwatch_reconnects_total 2",
		"helpwatch_last_message_age_seconds -1", "go_goroutines"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q (status %d)", want, code)
		}
	}
}

// syncBuffer is a buffer a logger writes to while the test reads it.
type syncBuffer = testkit.LockedBuffer

func TestLogStatusReportsRates(t *testing.T) {
	stats := &watcher.Stats{}
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	stats.Messages.Add(100)
	stats.Touch()
	go func() { LogStatus(ctx, &Health{Stats: stats}, log, 20*time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "msg=status") {
		if time.Now().After(deadline) {
			t.Fatal("no status line within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	out := buf.String()
	for _, want := range []string{"msg=status", "messages=100", "messages_per_s=", "dropped=0", "last_message_age="} {
		if !strings.Contains(out, want) {
			t.Errorf("status line lacks %q:\n%s", want, out)
		}
	}
}

func TestHealthzFollowsCTLogLag(t *testing.T) {
	now := time.Now()
	logs := []watcher.LogStatus{
		{Name: "Fresh", TreeSize: 100, Next: 100, TreeTime: now.Add(-30 * time.Second), HTTPErrors: 2},
		{Name: "Behind", TreeSize: 1000, Next: 400, TreeTime: now, NextTime: now.Add(-2 * time.Hour), VerifyFailures: 1},
	}
	var mu sync.Mutex
	h := &Health{Stats: &watcher.Stats{}, StaleAfter: time.Minute, Started: now.Add(-time.Hour), LagLimit: 15 * time.Minute,
		Logs: func() []watcher.LogStatus {
			mu.Lock()
			defer mu.Unlock()
			return append([]watcher.LogStatus(nil), logs...)
		}}
	if code, body := get(t, h, "/healthz"); code != 200 || !strings.Contains(body, "1 of 2 CT logs") {
		t.Errorf("one log behind: %d %q", code, body)
	}
	mu.Lock()
	logs[0].TreeTime = now.Add(-time.Hour)
	mu.Unlock()
	if code, body := get(t, h, "/healthz"); code != 503 || !strings.Contains(body, "none of 2 CT logs within 15m0s") {
		t.Errorf("every log behind: %d %q", code, body)
	}
	// A log that never gave a head is not within anything, and why is said at once: here,
	// the log asked to be left alone for ten minutes.
	mu.Lock()
	logs[0].TreeTime = now.Add(-30 * time.Second)
	logs = append(logs, watcher.LogStatus{Name: "Busy", Next: 0, RetryAt: now.Add(10 * time.Minute),
		LastError: "https://busy.example/checkpoint: HTTP 429 Too Many Requests; the log asks to wait 277h46m39s (Retry-After), asking again in 10m0s"})
	mu.Unlock()
	if code, body := get(t, h, "/healthz"); code != 200 || !strings.HasPrefix(body, "degraded: 1 of 3 CT logs") ||
		!strings.Contains(body, "no tree head from 1: Busy asks to wait ") || !strings.Contains(body, "more (Retry-After)") {
		t.Errorf("a log waiting on Retry-After: %d %q", code, body)
	}
	h.Stats.Gaps.Observe("https://ct.example/log/", 1)
	h.Stats.Gaps.Observe("https://ct.example/log/", 5)
	_, body := get(t, h, "/metrics")
	for _, want := range []string{`helpwatch_ct_log_lag_entries{log="Behind"} 600`, `helpwatch_ct_log_verification_failures_total{log="Behind"} 1`,
		`helpwatch_ct_log_http_errors_total{log="Fresh"} 2`, `helpwatch_ct_log_next_index{log="Behind"} 400`,
		`helpwatch_certstream_missed_entries_total{log="https://ct.example/log/"} 3`, `helpwatch_ct_log_retry_after_seconds{log="Fresh"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(body, `helpwatch_ct_log_lag_seconds{log="Behind"} 7`) { // about 7200
		t.Errorf("lag seconds of the log behind:\n%s", grepLines(body, "lag_seconds"))
	}
}

func grepLines(body, s string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
