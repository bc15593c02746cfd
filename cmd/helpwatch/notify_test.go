package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// holdingReceiver keeps every delivery id it is sent; the hold-th request is held unanswered
// until the test lets it go (the sender is killed meanwhile).
type holdingReceiver struct {
	mu      sync.Mutex
	got     []string
	hold    int
	held    chan struct{}
	release chan struct{}
}

func (h *holdingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	h.mu.Lock()
	h.got = append(h.got, r.Header.Get("X-Helpwatch-Delivery"))
	n := len(h.got)
	h.mu.Unlock()
	if n == h.hold {
		close(h.held)
		<-h.release
		return
	}
	io.WriteString(w, "ok")
}

func (h *holdingReceiver) deliveries() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// Notifications survive a kill -9: work is killed while a delivery is in flight, a new work
// delivers the rest, and no event is sent twice, except the one the receiver had not answered
// when the sender died, which comes again with the same delivery id (a receiver drops it).
func TestNotificationsAfterKill9(t *testing.T) {
	recv := &holdingReceiver{hold: 3, held: make(chan struct{}), release: make(chan struct{})}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	defer close(recv.release)
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	cfg := filepath.Join(dir, "notify.yaml")
	os.WriteFile(cfg, []byte(`channels: [{name: soc, type: webhook, url: "`+srv.URL+`/hook", secret_env: HOOK_SECRET}]
triggers: [{events: [new_case], channels: [soc]}]
`), 0o600)
	t.Setenv("HOOK_SECRET", "0123456789abcdef0123")
	host := strings.TrimPrefix(srv.URL, "http://")
	// Notifications are set up first (a first look starts the scans where the store is), then
	// the cases arrive.
	demo, err := os.ReadFile("../../testdata/certstream_demo.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	// The stream's messages up to its first case are stored before notifications are set up.
	first := filepath.Join(dir, "first.jsonl")
	lines := strings.SplitAfter(string(demo), "\n")
	for i := 1; ; i++ {
		if i > len(lines) {
			t.Fatal("the demo stream makes no case")
		}
		os.WriteFile(first, []byte(strings.Join(lines[:i], "")), 0o600)
		if _, stderr, code := runCLI(t, "", "watch", "--source", first, "--db", db, "--enrich=false", "--site-check=false"); code != 0 {
			t.Fatalf("watch: %s", stderr)
		}
		if n, err := countCasesQuiet(db); err != nil || n > 0 {
			break
		}
	}
	if _, stderr, code := runCLI(t, "", "work", "--drain", "--db", db, "--kinds", "notify", "--notify", cfg, "--allow-host", host); code != 0 {
		t.Fatalf("work: %s", stderr)
	}
	before, err := countCasesQuiet(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, "", "watch", "--source", "../../testdata/certstream_demo.jsonl", "--db", db, "--enrich=false", "--site-check=false"); code != 0 {
		t.Fatalf("watch: %s", stderr)
	}
	after, err := countCasesQuiet(db)
	if err != nil {
		t.Fatal(err)
	}
	want := after - before
	child := newChild("work", "--db", db, "--kinds", "notify", "--notify", cfg, "--allow-host", host, "--notify-workers", "1")
	stderr := &lockedBuilder{}
	child.Stderr = stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-recv.held:
	case <-time.After(60 * time.Second):
		child.Process.Kill()
		t.Fatalf("no third delivery within a minute:\n%s", stderr)
	}
	child.Process.Kill() // SIGKILL: nothing is cleaned up
	child.Wait()
	_, errOut, code := runCLI(t, "", "work", "--drain", "--db", db, "--kinds", "notify", "--notify", cfg, "--allow-host", host)
	if code != 0 {
		t.Fatalf("work after the kill: %d\n%s", code, errOut)
	}
	got := recv.deliveries()
	count := map[string]int{}
	for _, d := range got {
		count[d]++
	}
	held := got[2]
	if count[held] != 2 {
		t.Errorf("the delivery in flight at the kill was sent %d times, want again once (same id)", count[held])
	}
	for d, n := range count {
		if n > 1 && d != held {
			t.Errorf("delivery %s sent %d times", d, n)
		}
	}
	// The cases stored before notifications were set up are not announced; every later one is.
	if len(count) != want || want < 5 {
		t.Errorf("%d events delivered, want %d: %v", len(count), want, got)
	}
	out, _, _ := runCLI(t, "", "notify", "list", "--db", db)
	if strings.Count(out, " sent ") != want {
		t.Errorf("notify list:\n%s", out)
	}
}

// notify check explains a settings file; notify test sends a made-up event through the guard
// (refused without --allow-host, delivered with it); an unset secret is named at start.
func TestNotifyCheckAndTest(t *testing.T) {
	for _, k := range []string{"HELPWATCH_WEBHOOK_SECRET", "HELPWATCH_SLACK_URL", "HELPWATCH_TEAMS_URL", "HELPWATCH_SMTP_PASSWORD"} {
		t.Setenv(k, "https://hooks.example.org/0123456789abcdef")
	}
	out, stderr, code := runCLI(t, "", "notify", "check", "../../docs/notify.example.yaml")
	if code != 0 || !strings.Contains(out, "daily-mail") || !strings.Contains(out, "daily digest") || !strings.Contains(out, "-> slack-brand, soc") {
		t.Errorf("notify check: %d\n%s%s", code, out, stderr)
	}
	t.Setenv("HELPWATCH_SLACK_URL", "")
	if _, stderr, code := runCLI(t, "", "notify", "check", "../../docs/notify.example.yaml"); code == 0 || !strings.Contains(stderr, "HELPWATCH_SLACK_URL is empty") || !strings.Contains(stderr, "notify.example.yaml:") {
		t.Errorf("unset secret: %d %s", code, stderr)
	}
	var got []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(body))
		mu.Unlock()
	}))
	defer srv.Close()
	cfg := filepath.Join(t.TempDir(), "n.yaml")
	os.WriteFile(cfg, []byte(`channels: [{name: chat, type: slack, url: "`+srv.URL+`"}]
triggers: [{events: [new_case], channels: [chat]}]
`), 0o600)
	if _, stderr, code := runCLI(t, "", "notify", "test", cfg, "chat"); code == 0 || !strings.Contains(stderr, "127.0.0.1") {
		t.Errorf("a loopback channel without --allow-host: %d %s", code, stderr)
	}
	out, stderr, code = runCLI(t, "", "notify", "test", cfg, "chat", "--allow-host", strings.TrimPrefix(srv.URL, "http://"))
	if code != 0 || !strings.Contains(out, "sent a test event to chat") {
		t.Errorf("notify test: %d %s %s", code, out, stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.Contains(got[0], "test event") {
		t.Errorf("the receiver got %q", got)
	}
}
