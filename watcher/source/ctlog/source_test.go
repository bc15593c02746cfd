package ctlog_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog/ctlogtest"
)

// collector is an emit function that keeps what it got, and a position store over the
// positions it saw (what a store would have committed).
type collector struct {
	mu        sync.Mutex
	events    []*watcher.Event
	positions map[string]watcher.LogPosition
	read      map[string]int64
}

func newCollector() *collector {
	return &collector{positions: map[string]watcher.LogPosition{}, read: map[string]int64{}}
}

func (c *collector) emit(ev *watcher.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ev.Position != nil {
		c.positions[ev.Position.LogID] = *ev.Position
		c.read[ev.Position.LogID] += ev.Position.Read
		return
	}
	c.events = append(c.events, ev)
}

func (c *collector) LogPositions(context.Context) ([]watcher.LogPosition, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []watcher.LogPosition
	for _, p := range c.positions {
		out = append(out, p)
	}
	return out, nil
}

func (c *collector) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, ev := range c.events {
		out = append(out, ev.Names...)
	}
	return out
}

func (c *collector) position(id string) (watcher.LogPosition, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.positions[id]
	return p, ok
}

func index(i int64) *int64 { return &i }

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// run starts a source over list and returns a stop function that waits for Run to return.
func run(t *testing.T, cfg ctlog.Config, c *collector) (*ctlog.Source, func() error) {
	t.Helper()
	src, stop, _ := runStats(t, cfg, c)
	return src, stop
}

// runStats is run that also returns the source's counters.
func runStats(t *testing.T, cfg ctlog.Config, c *collector) (*ctlog.Source, func() error, *watcher.Stats) {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = quietLog()
	}
	if cfg.Poll == 0 {
		cfg.Poll = 10 * time.Millisecond
	}
	if cfg.Positions == nil {
		cfg.Positions = c
	}
	src, err := ctlog.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stats := &watcher.Stats{}
	go func() { done <- src.Run(ctx, c.emit, stats) }()
	var once sync.Once
	var err2 error
	stop := func() error {
		once.Do(func() { cancel(); err2 = <-done })
		return err2
	}
	t.Cleanup(func() { stop() })
	return src, stop, stats
}

func TestFollowsBothKindsFromTheirHead(t *testing.T) {
	ca := ctlogtest.NewCA()
	for _, kind := range []string{ctlog.KindRFC6962, ctlog.KindStatic} {
		t.Run(kind, func(t *testing.T) {
			l := ctlogtest.NewLog(t, kind, "Test2026")
			l.Add(ca.CertEntry("before.example"))
			l.Publish()
			c := newCollector()
			id := l.ListLog().ID
			run(t, ctlog.Config{List: ctlogtest.List(l)}, c)
			waitFor(t, "the start position", func() bool { _, ok := c.position(id); return ok })
			if p, _ := c.position(id); p.Next != 1 {
				t.Fatalf("a new log starts at its head: next %d, want 1", p.Next)
			}
			// The tree grows while watched, past a tile boundary for the static log.
			l.Add(ca.PrecertEntry("hp-printer-help.example", "www.hp-printer-help.example"))
			for i := range 300 {
				l.Add(ca.CertEntry("filler" + strconv.Itoa(i) + ".example"))
			}
			l.Add(ca.CertEntry("canon-setup.example"))
			l.Publish()
			waitFor(t, "the new entries", func() bool { p, _ := c.position(id); return p.Next == 303 })
			names := c.names()
			if slices.Contains(names, "before.example") {
				t.Error("an entry before the head was read")
			}
			for _, want := range []string{"hp-printer-help.example", "www.hp-printer-help.example", "canon-setup.example", "filler0.example", "filler299.example"} {
				if !slices.Contains(names, want) {
					t.Errorf("name %s not read", want)
				}
			}
			if len(names) != 303 {
				t.Errorf("%d names read, want 303", len(names))
			}
			c.mu.Lock()
			first := c.events[0]
			c.mu.Unlock()
			if first.Cert.Index != 1 || first.Cert.Issuer != "Helpwatch Test Helpwatch Test CA" || first.Cert.Fingerprint == "" || first.Cert.NotBefore.IsZero() {
				t.Errorf("first event's certificate: %+v", first.Cert)
			}
			if c.read[id] != 302 {
				t.Errorf("positions add up to %d entries read, want 302", c.read[id])
			}
		})
	}
}
