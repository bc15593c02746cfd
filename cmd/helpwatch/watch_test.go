package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/helpwatch/helpwatch/watcher/testkit"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// TestMain lets a test run the real command in a child process (for signals and kill -9):
// the child is this test binary with HELPWATCH_MAIN set.
func TestMain(m *testing.M) {
	if os.Getenv("HELPWATCH_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func demoFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join("..", "..", "testdata", "certstream_demo.jsonl")
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func decodeCases(t *testing.T, jsonl string) []watcher.Case {
	t.Helper()
	var out []watcher.Case
	sc := bufio.NewScanner(strings.NewReader(jsonl))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var f watcher.Case
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		out = append(out, f)
	}
	return out
}

func domains(cs []watcher.Case) string {
	var d []string
	for _, c := range cs {
		d = append(d, c.Registrable)
	}
	sort.Strings(d)
	return strings.Join(d, " ")
}

// End to end: replay a file → store → `helpwatch findings` shows the expected rows.
func TestWatchReplayThenFindings(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	stdout, stderr, code := runCLI(t, "", "watch", "--enrich=false", "--site-check=false", "--source", demoFile(t), "--db", db)
	if code != 0 {
		t.Fatalf("watch exit %d: %s", code, stderr)
	}
	emitted := decodeCases(t, stdout)
	if len(emitted) != 11 {
		t.Errorf("watch printed %d cases, want 11:\n%s", len(emitted), stdout)
	}
	if !strings.Contains(stderr, "line=13") || !strings.Contains(stderr, "malformed=1") {
		t.Errorf("the broken line 13 is not reported:\n%s", stderr)
	}

	out, stderr, code := runCLI(t, "", "findings", "--db", db, "--brand", "hp", "--verdict", "alert", "--format", "jsonl")
	if code != 0 {
		t.Fatalf("findings exit %d: %s", code, stderr)
	}
	hp := decodeCases(t, out)
	want := "123-hp-setup-wireless.net hp-printer-setup-help.com hp-smart-app-setup.support hpprinterdriversupport.site"
	if got := domains(hp); got != want {
		t.Errorf("hp alerts:\n got %s\nwant %s", got, want)
	}
	for _, c := range hp {
		switch c.Registrable {
		case "hp-printer-setup-help.com":
			if c.Cert.LogURL == "" || c.Cert.Index <= 0 || c.Cert.Issuer == "" || c.Cert.NotBefore.IsZero() || c.CertCount != 1 ||
				c.Score.RulesVersion == "" || len(c.Score.Reasons) == 0 || c.CTSeen.IsZero() {
				t.Errorf("case lacks certificate details: %+v", c)
			}
		case "123-hp-setup-wireless.net":
			if len(c.Names) != 2 {
				t.Errorf("www. and the apex are one case: %+v", c.Names)
			}
		}
	}
	// The brand-owned and benign names in the file are not findings.
	all, _, _ := runCLI(t, "", "findings", "--db", db, "--format", "jsonl")
	for _, c := range decodeCases(t, all) {
		if c.Registrable == "hp.com" || strings.HasSuffix(c.Registrable, ".canon") || strings.Contains(c.Registrable, "example") {
			t.Errorf("unexpected case %s", c.Registrable)
		}
	}

	// Replaying the same file again creates nothing new and counts no certificate twice.
	stdout, _, code = runCLI(t, "", "watch", "--enrich=false", "--site-check=false", "--source", demoFile(t), "--db", db)
	if code != 0 || strings.TrimSpace(stdout) != "" {
		t.Errorf("second replay: exit %d, printed %q", code, stdout)
	}
	again, _, _ := runCLI(t, "", "findings", "--db", db, "--format", "jsonl")
	if a, b := decodeCases(t, all), decodeCases(t, again); len(a) != len(b) {
		t.Errorf("second replay changed the number of cases: %d → %d", len(a), len(b))
	}

	// Table and CSV render the same rows.
	table, _, _ := runCLI(t, "", "findings", "--db", db, "--brand", "canon")
	if !strings.Contains(table, "ijstart-canon-setup.online") || !strings.Contains(table, "VERDICT") {
		t.Errorf("table:\n%s", table)
	}
	csv, _, _ := runCLI(t, "", "findings", "--db", db, "--format", "csv", "--since", "1h", "--by-read")
	if lines := strings.Count(csv, "\n"); lines != 12 {
		t.Errorf("csv has %d lines, want header + 11", lines)
	}
	if out, _, _ := runCLI(t, "", "findings", "--db", db, "--since", "2099-01-01"); strings.Contains(out, "hp") {
		t.Errorf("--since in the future still lists findings:\n%s", out)
	}
}

func TestFindingsErrors(t *testing.T) {
	_, stderr, code := runCLI(t, "", "findings", "--db", filepath.Join(t.TempDir(), "missing.db"))
	if code != 1 || !strings.Contains(stderr, "missing.db") || !strings.Contains(stderr, "helpwatch watch") {
		t.Errorf("missing db: exit %d, %s", code, stderr)
	}
	for _, args := range [][]string{
		{"findings", "--since", "yesterday"},
		{"findings", "--verdict", "bad"},
		{"findings", "--format", "xml"},
		{"watch", "--min-verdict", "ignore"},
		{"watch", "--source", "http://example.test/"},
		{"watch", "--source", "ws://"},
		{"record"},
	} {
		if _, stderr, code := runCLI(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
	if _, stderr, code := runCLI(t, "", "watch", "--enrich=false", "--site-check=false", "--source", "no-such-file.jsonl", "--db", filepath.Join(t.TempDir(), "x.db")); code != 1 || !strings.Contains(stderr, "no-such-file.jsonl") {
		t.Errorf("missing replay file: exit %d, %s", code, stderr)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"24h":        now.Add(-24 * time.Hour),
		"7d":         now.Add(-7 * 24 * time.Hour),
		"90m":        now.Add(-90 * time.Minute),
		"2026-11-26": time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC),
	} {
		if got, err := parseSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1h", "xd", "soon"} {
		if _, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) accepted", bad)
		}
	}
}

// streamServer serves certificate messages with scam-shaped names forever (or n of them), one
// per interval, to every connection.
func streamServer(t *testing.T, n int, interval time.Duration) (url string, sent func() int) {
	t.Helper()
	var mu sync.Mutex
	count := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		go func() { // answer pings and notice the client leaving
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}()
		for {
			mu.Lock()
			i := count
			if n > 0 && i >= n {
				mu.Unlock()
				time.Sleep(interval)
				continue
			}
			count++
			mu.Unlock()
			msg := fmt.Sprintf(`{"message_type":"certificate_update","data":{"cert_index":%d,"leaf_cert":{"all_domains":["epson-printer-setup-%d.com"],"fingerprint":"F%d","issuer":{"O":"Test CA"}},"source":{"url":"log.test/"}}}`, i, i, i)
			if c.WriteMessage(websocket.TextMessage, []byte(msg)) != nil {
				return
			}
			time.Sleep(interval)
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), func() int { mu.Lock(); defer mu.Unlock(); return count }
}

func countCases(t *testing.T, path string) (int, string) {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check, err := db.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found, err := db.Cases(ctx, store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return len(found), check
}

// lockedBuilder collects a child's output while the test reads it.
type lockedBuilder = testkit.LockedBuffer

// countCasesQuiet counts the cases of a database another goroutine is writing (no t: it runs
// outside the test goroutine).
func countCasesQuiet(path string) (int, error) {
	db, err := store.OpenSQLite(context.Background(), path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	cs, err := db.Cases(context.Background(), store.Query{})
	return len(cs), err
}

type execCmd = exec.Cmd

// newChild is this test binary running the real command line args.
func newChild(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "HELPWATCH_MAIN=1")
	return cmd
}

func childWatch(t *testing.T, args ...string) (*exec.Cmd, *lockedBuilder) {
	t.Helper()
	cmd := newChild(append([]string{"watch", "--enrich=false", "--site-check=false"}, args...)...)
	stderr := &lockedBuilder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stderr
}

var waitFor = testkit.WaitFor

func TestWatchSIGTERMStoresEverythingAndExitsZero(t *testing.T) {
	url, sent := streamServer(t, 40, 5*time.Millisecond)
	db := filepath.Join(t.TempDir(), "h.db")
	// The status line says how many messages arrived: the signal goes once all 40 are read
	// (and before a batch interval has passed, so the final flush is what stores them).
	cmd, stderr := childWatch(t, "--source", url, "--db", db, "--status-every", "20ms")
	waitFor(t, "the child to read 40 messages", 20*time.Second, func() bool { return sent() >= 40 && strings.Contains(stderr.String(), " messages=40 ") })
	cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var err error
	select {
	case err = <-exited:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("watch did not exit within a minute of SIGTERM:\n%s", stderr)
	}
	if err != nil {
		t.Fatalf("watch exited with %v after SIGTERM:\n%s", err, stderr)
	}
	if n, check := countCases(t, db); n != 40 || check != "ok" {
		t.Errorf("after SIGTERM: %d findings stored (want all 40), integrity %q\n%s", n, check, stderr)
	}
}

func TestWatchSurvivesKill9AndCarriesOn(t *testing.T) {
	url, sent := streamServer(t, 0, 2*time.Millisecond)
	db := filepath.Join(t.TempDir(), "h.db")
	cmd, stderr := childWatch(t, "--source", url, "--db", db, "--status-every", "0")
	// At least one committed batch, and a batch in progress: killed while writing.
	defer func() {
		if t.Failed() {
			t.Logf("the watch said:\n%s", stderr)
		}
	}()
	waitFor(t, "a committed batch", 60*time.Second, func() bool { n, _ := countCasesQuiet(db); return n > 0 })
	mark := sent()
	waitFor(t, "another batch's worth of messages", 20*time.Second, func() bool { return sent() > mark+200 })
	atKill := sent()
	cmd.Process.Kill()
	cmd.Wait()
	n, check := countCases(t, db)
	if check != "ok" {
		t.Fatalf("database corrupt after kill -9: %s", check)
	}
	// Lost: at most the batch being collected, about a second of the stream.
	// The stream runs at about 500 messages a second and batches commit every second, so
	// losing more than two seconds' worth means batches are not being committed as they go.
	if n == 0 || n > atKill || atKill-n > 1000 {
		t.Fatalf("after kill -9: %d findings stored of %d sent", n, atKill)
	}
	t.Logf("kill -9 after %d messages: %d stored", atKill, n)

	// A restart on the same file carries on. The signal goes once it has stored something new
	// (a process still starting up has no handler yet, and a slow machine starts slowly).
	cmd2, stderr2 := childWatch(t, "--source", url, "--db", db, "--status-every", "0")
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if n2, _ := countCases(t, db); n2 > n {
			break
		}
	}
	cmd2.Process.Signal(syscall.SIGTERM)
	if err := cmd2.Wait(); err != nil {
		t.Fatalf("restart: %v\n%s", err, stderr2)
	}
	if n2, check := countCases(t, db); n2 <= n || check != "ok" {
		t.Errorf("restart stored nothing new: %d → %d (%s)\n%s", n, n2, check, stderr2)
	}
}

func TestRecordThenReplay(t *testing.T) {
	url, _ := streamServer(t, 0, time.Millisecond)
	out := filepath.Join(t.TempDir(), "rec.jsonl")
	if _, stderr, code := runCLI(t, "", "record", "--source", url, "--out", out, "--max", "25"); code != 0 {
		t.Fatalf("record exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil || strings.Count(string(data), "\n") != 25 {
		t.Fatalf("recorded %d lines (%v), want 25", strings.Count(string(data), "\n"), err)
	}
	db := filepath.Join(t.TempDir(), "h.db")
	stdout, stderr, code := runCLI(t, "", "watch", "--enrich=false", "--site-check=false", "--source", out, "--db", db)
	if code != 0 || len(decodeCases(t, stdout)) != 25 {
		t.Errorf("replay of the recording: exit %d, %d cases\n%s", code, len(decodeCases(t, stdout)), stderr)
	}
}

func TestWatchLiveInProcessWithMetrics(t *testing.T) {
	url, sent := streamServer(t, 10, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	old := watchContext
	watchContext = func() (context.Context, context.CancelFunc) { return ctx, cancel }
	defer func() { watchContext = old }()
	db := filepath.Join(t.TempDir(), "h.db")
	// Stopped once the ten cases are committed (the watch prints a case only after that).
	go func() {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(db); err != nil || sent() < 10 {
				continue
			}
			if n, _ := countCasesQuiet(db); n >= 10 {
				break
			}
		}
		cancel()
	}()
	stdout, stderr, code := runCLI(t, "", "watch", "--enrich=false", "--site-check=false", "--source", url, "--db", db, "--metrics-addr", "127.0.0.1:0", "--min-verdict", "alert")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if got := len(decodeCases(t, stdout)); got != 10 {
		t.Errorf("printed %d cases, want 10", got)
	}
	if !strings.Contains(stderr, "serving metrics") || !strings.Contains(stderr, "messages=10") {
		t.Errorf("stderr:\n%s", stderr)
	}
}
