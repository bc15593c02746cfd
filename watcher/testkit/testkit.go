// Package testkit holds what the tests of every package share: waiting on a condition with a
// deadline (never sleeping before an assertion), a logger that discards, a buffer several
// goroutines write to, and the default rule set. It is imported by tests only.
package testkit

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
)

// WaitFor polls cond until it holds, failing the test with what it waited for after within. A
// test waits on what it needs to see, never for a fixed time.
func WaitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Quiet is a logger that discards everything.
func Quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// DefaultRules is the embedded rule set, failing the test when it does not load.
func DefaultRules(t testing.TB) *rules.RuleSet {
	t.Helper()
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// LockedBuffer is a bytes.Buffer that goroutines (a child's output, a logger) write to while
// the test reads it.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// NeedBrowser skips without Chromium, except where HELPWATCH_REQUIRE_BROWSER=1 (CI installs
// Chromium and sets it): there a missing browser fails the test instead of hiding it.
func NeedBrowser(t testing.TB) {
	t.Helper()
	_, err := exec.LookPath("chromium")
	if _, shell := exec.LookPath("chromium-headless-shell"); shell == nil {
		err = nil
	}
	if err != nil {
		if os.Getenv("HELPWATCH_REQUIRE_BROWSER") == "1" {
			t.Fatal("chromium is required here (HELPWATCH_REQUIRE_BROWSER=1) but not installed")
		}
		t.Skip("chromium not installed (apt-get install chromium); skipping the rendering check")
	}
}
