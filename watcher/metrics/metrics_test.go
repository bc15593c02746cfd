package metrics

import (
	"bytes"
	"context"
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

// syncBuffer is a buffer the logger writes to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

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
