package ctlog_test

import (
	"bytes"
	"context"
	"fmt"
	"github.com/helpwatch/helpwatch/watcher/testkit"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog/ctlogtest"
)

var kinds = []string{ctlog.KindRFC6962, ctlog.KindStatic}

// grow adds n certificate entries named prefix0.example ... and publishes them.
func grow(l *ctlogtest.Log, ca *ctlogtest.CA, prefix string, n int) {
	for i := range n {
		l.Add(ca.CertEntry(fmt.Sprintf("%s%d.example", prefix, i)))
	}
	l.Publish()
}

func statusOf(src *ctlog.Source, name string) watcher.LogStatus {
	for _, s := range src.Status() {
		if strings.HasSuffix(s.Name, name) {
			return s
		}
	}
	return watcher.LogStatus{}
}

// forgeHeads makes l answer every head request, from the call of lie on, with the head lie
// was given; until then l answers honestly.
func forgeHeads(l *ctlogtest.Log) (lie func(head []byte)) {
	var forged atomic.Pointer[[]byte]
	l.Hook = func(w http.ResponseWriter, r *http.Request) bool {
		if h := forged.Load(); h != nil && ctlogtest.IsHead(r) {
			w.Write(*h)
			return true
		}
		return false
	}
	return func(head []byte) { forged.Store(&head) }
}

// syncBuffer is a buffer a logger writes to while the test reads it.
type syncBuffer = testkit.LockedBuffer

func TestResumesWhereItStoppedWithoutSkippingOrRepeating(t *testing.T) {
	ca := ctlogtest.NewCA()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l := ctlogtest.NewLog(t, kind, "Resume")
			id := l.ListLog().ID
			c := newCollector()
			_, stop := run(t, ctlog.Config{List: ctlogtest.List(l)}, c)
			waitFor(t, "the start position", func() bool { _, ok := c.position(id); return ok })
			grow(l, ca, "first", 700)
			waitFor(t, "the first entries", func() bool { p, _ := c.position(id); return p.Next == 700 })
			stop()
			// Offline for a while: the log grows, the restart catches up from the stored position.
			grow(l, ca, "second", 500)
			_, stop = run(t, ctlog.Config{List: ctlogtest.List(l)}, c)
			waitFor(t, "the catch-up", func() bool { p, _ := c.position(id); return p.Next == 1200 })
			stop()
			names := c.names()
			distinct := slices.Compact(slices.Sorted(slices.Values(names)))
			if len(names) != 1200 || len(distinct) != 1200 || !slices.Contains(distinct, "first0.example") || !slices.Contains(distinct, "second499.example") {
				t.Fatalf("%d names read (%d distinct), want each of the 1200 once", len(names), len(distinct))
			}
			if c.read[id] != 1200 {
				t.Errorf("positions add up to %d entries, want 1200", c.read[id])
			}
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	ca := ctlogtest.NewCA()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l := ctlogtest.NewLog(t, kind, "Busy")
			grow(l, ca, "x", 3)
			var mu sync.Mutex
			var refused, retried time.Time
			l.Hook = func(w http.ResponseWriter, r *http.Request) bool {
				if !ctlogtest.IsHead(r) {
					return false
				}
				mu.Lock()
				defer mu.Unlock()
				if refused.IsZero() {
					refused = time.Now()
					w.Header().Set("Retry-After", "1")
					http.Error(w, "slow down", http.StatusTooManyRequests)
					return true
				}
				if retried.IsZero() {
					retried = time.Now()
				}
				return false
			}
			c := newCollector()
			src, _ := run(t, ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0)}, c)
			id := l.ListLog().ID
			waitFor(t, "the entries after the 429", func() bool { p, _ := c.position(id); return p.Next == 3 })
			mu.Lock()
			gap := retried.Sub(refused)
			mu.Unlock()
			if gap < time.Second {
				t.Errorf("asked again %s after a 429 with Retry-After: 1", gap)
			}
			if st := statusOf(src, "Busy"); st.HTTPErrors != 1 {
				t.Errorf("HTTP errors counted: %d, want 1", st.HTTPErrors)
			}
		})
	}
}

func TestHangingLogStallsOnlyItself(t *testing.T) {
	ca := ctlogtest.NewCA()
	good := ctlogtest.NewLog(t, ctlog.KindStatic, "Good")
	bad := ctlogtest.NewLog(t, ctlog.KindRFC6962, "Hangs")
	bad.Hook = func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done() // never answers
		return true
	}
	c := newCollector()
	src, _ := run(t, ctlog.Config{List: ctlogtest.List(good, bad), FromIndex: index(0),
		Politeness: ctlog.Politeness{Timeout: 200 * time.Millisecond, Retries: 1}}, c)
	grow(good, ca, "g", 10)
	waitFor(t, "the good log's entries", func() bool { p, _ := c.position(good.ListLog().ID); return p.Next == 10 })
	waitFor(t, "the hanging log's error", func() bool { return statusOf(src, "Hangs").LastError != "" })
	if st := statusOf(src, "Hangs"); st.HTTPErrors == 0 || st.Next != 0 {
		t.Errorf("hanging log: %+v", st)
	}
}

func TestUnverifiableHeadsAreRefused(t *testing.T) {
	ca := ctlogtest.NewCA()
	cases := map[string]func(l *ctlogtest.Log) []byte{
		"bad signature": func(l *ctlogtest.Log) []byte {
			return l.SignedHead(ctlogtest.NewKey(), l.Size(), l.RootAt(l.Size()))
		},
		// A smaller head is a lagging frontend's only when it is a prefix of the verified tree.
		"tree shrinks to another tree": func(l *ctlogtest.Log) []byte {
			var other [32]byte
			copy(other[:], "not the tree of the first five!")
			return l.SignedHead(nil, 5, other)
		},
		"tree forks": func(l *ctlogtest.Log) []byte {
			var other [32]byte
			copy(other[:], "a different tree of the same size")
			return l.SignedHead(nil, 20, other)
		},
		"head does not match the entries": func(l *ctlogtest.Log) []byte {
			var other [32]byte
			copy(other[:], "not the root of these entries!!")
			return l.SignedHead(nil, l.Size(), other)
		},
	}
	for name, forge := range cases {
		for _, kind := range kinds {
			t.Run(name+"/"+kind, func(t *testing.T) {
				l := ctlogtest.NewLog(t, kind, "Liar")
				grow(l, ca, "honest", 20)
				c := newCollector()
				logs := &syncBuffer{}
				lie := forgeHeads(l)
				src, _ := run(t, ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0), Log: slog.New(slog.NewTextHandler(logs, nil))}, c)
				id := l.ListLog().ID
				waitFor(t, "the honest entries", func() bool { p, _ := c.position(id); return p.Next == 20 })
				// The log lies from its next head on: the entries are there (published, so
				// tiles and get-entries serve them), but the only head that covers them is forged.
				for i := range 30 {
					l.Add(ca.CertEntry(fmt.Sprintf("after%d.example", i)))
				}
				lie(forge(l))
				l.Serve()
				waitFor(t, "the refusal", func() bool { return statusOf(src, "Liar").VerifyFailures > 0 })
				if p, _ := c.position(id); p.Next != 20 {
					t.Errorf("read up to %d from a head that does not verify", p.Next)
				}
				for _, n := range c.names() {
					if strings.HasPrefix(n, "after") {
						t.Fatalf("ingested %s from an unverifiable head", n)
					}
				}
				if !strings.Contains(logs.String(), "Liar") || !strings.Contains(logs.String(), "does not verify") {
					t.Errorf("the error does not name the log:\n%s", logs.String())
				}
			})
		}
	}
}

func TestEntriesThatAreNotInTheTreeAreRefused(t *testing.T) {
	ca := ctlogtest.NewCA()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l := ctlogtest.NewLog(t, kind, "Swapper")
			grow(l, ca, "real", 10)
			fake := ctlogtest.NewLog(t, kind, "Swapper2")
			grow(fake, ca, "fake", 10)
			// Entries come from another tree of the same size; the head is the real one.
			l.Hook = func(w http.ResponseWriter, r *http.Request) bool {
				if ctlogtest.IsHead(r) || strings.Contains(r.URL.Path, "/tile/") && !strings.Contains(r.URL.Path, "/tile/data/") {
					return false
				}
				r2 := r.Clone(r.Context())
				r2.URL.Path = strings.Replace(r.URL.Path, "/swapper/", "/swapper2/", 1)
				fake.ServeHTTP(w, r2)
				return true
			}
			c := newCollector()
			src, _ := run(t, ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0)}, c)
			waitFor(t, "the refusal", func() bool { return statusOf(src, "Swapper").VerifyFailures > 0 })
			if names := c.names(); len(names) > 0 {
				t.Fatalf("ingested entries that are not in the tree: %v", names)
			}
		})
	}
}

func TestPartialTileThenFullTile(t *testing.T) {
	ca := ctlogtest.NewCA()
	l := ctlogtest.NewLog(t, ctlog.KindStatic, "Edge")
	grow(l, ca, "a", 100) // one partial tile: tile/data/000.p/100
	c := newCollector()
	id := l.ListLog().ID
	run(t, ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0)}, c)
	waitFor(t, "the partial tile", func() bool { p, _ := c.position(id); return p.Next == 100 })
	grow(l, ca, "b", 200) // the tile fills, and a second one starts
	waitFor(t, "the full tile", func() bool { p, _ := c.position(id); return p.Next == 300 })
	names := c.names()
	if len(names) != 300 || len(slices.Compact(slices.Sorted(slices.Values(names)))) != 300 {
		t.Fatalf("%d names, some repeated or missing: %v", len(names), names)
	}
}

func TestReadOnlyLogEndsAtItsFinalHead(t *testing.T) {
	ca := ctlogtest.NewCA()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l := ctlogtest.NewLog(t, kind, "Frozen")
			grow(l, ca, "f", 40)
			list := ctlogtest.List(l)
			list.Logs[0].State = "readonly"
			list.Logs[0].Final = &ctlog.TreeHead{Size: 40, Root: l.RootAt(40)}
			c := newCollector()
			cfg := ctlog.Config{List: list, FromIndex: index(0), Log: quietLog(), Poll: 10 * time.Millisecond, Positions: c}
			src, err := ctlog.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- src.Run(context.Background(), c.emit, &watcher.Stats{}) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("following a read-only log did not end at its final head")
			}
			if n := len(c.names()); n != 40 {
				t.Errorf("%d names read, want 40", n)
			}
		})
	}
}

func TestLogLeavingTheListIsStopped(t *testing.T) {
	ca := ctlogtest.NewCA()
	stays := ctlogtest.NewLog(t, ctlog.KindStatic, "Stays")
	leaves := ctlogtest.NewLog(t, ctlog.KindRFC6962, "Leaves")
	full := ctlogtest.List(stays, leaves)
	var current atomic.Pointer[ctlog.List]
	current.Store(full)
	c := newCollector()
	src, _ := run(t, ctlog.Config{List: full, ListURL: "https://lists.example/log_list.json", ListRefresh: 20 * time.Millisecond,
		LoadList: func(context.Context, string) (*ctlog.List, error) { return current.Load(), nil }}, c)
	waitFor(t, "both logs followed", func() bool { return len(src.Status()) == 2 })
	grow(leaves, ca, "l", 5)
	waitFor(t, "the leaving log's entries", func() bool { p, _ := c.position(leaves.ListLog().ID); return p.Next == 5 })
	current.Store(ctlogtest.List(stays))
	waitFor(t, "the log to be dropped", func() bool { return len(src.Status()) == 1 })
	before := leaves.Count("get-sth")
	grow(stays, ca, "s", 5)
	waitFor(t, "the remaining log's entries", func() bool { p, _ := c.position(stays.ListLog().ID); return p.Next == 5 })
	if after := leaves.Count("get-sth"); after > before+1 {
		t.Errorf("the log that left the list was asked %d more times", after-before)
	}
	if _, ok := c.position(leaves.ListLog().ID); !ok {
		t.Error("the position of the log that left was lost")
	}
}

func TestSamePrecertificateInTwoLogsIsReadOnce(t *testing.T) {
	ca := ctlogtest.NewCA()
	a := ctlogtest.NewLog(t, ctlog.KindStatic, "LogA")
	b := ctlogtest.NewLog(t, ctlog.KindRFC6962, "LogB")
	c := newCollector()
	src, _ := run(t, ctlog.Config{List: ctlogtest.List(a, b), FromIndex: index(0)}, c)
	e := ca.PrecertEntry("epson-help.example")
	a.Add(e)
	a.Publish()
	waitFor(t, "log A", func() bool { p, _ := c.position(a.ListLog().ID); return p.Next == 1 })
	b.Add(e)
	b.Publish()
	waitFor(t, "log B", func() bool { p, _ := c.position(b.ListLog().ID); return p.Next == 1 })
	if names := c.names(); len(names) != 1 {
		t.Errorf("names %v, want the precertificate once", names)
	}
	if src.CrossLogDuplicates() != 1 {
		t.Errorf("cross-log duplicates %d, want 1", src.CrossLogDuplicates())
	}
}

func TestStartingPoints(t *testing.T) {
	ca := ctlogtest.NewCA()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l := ctlogtest.NewLog(t, kind, "Old")
			l.MaxEntries = 32 // as Google's logs answer
			old := time.Now().Add(-48 * time.Hour)
			for i := range 600 {
				e := ca.CertEntry(fmt.Sprintf("e%d.example", i))
				if i < 400 {
					e.Timestamp = old
				}
				l.Add(e)
			}
			l.Publish()
			t.Run("from-index", func(t *testing.T) {
				c := newCollector()
				run(t, ctlog.Config{List: ctlogtest.List(l), FromIndex: index(333)}, c)
				waitFor(t, "the entries", func() bool { p, _ := c.position(l.ListLog().ID); return p.Next == 600 })
				names := c.names()
				if len(names) != 267 || names[0] != "e333.example" {
					t.Errorf("read %d names from %v", len(names), names[:min(1, len(names))])
				}
			})
			t.Run("backfill", func(t *testing.T) {
				c := newCollector()
				run(t, ctlog.Config{List: ctlogtest.List(l), Backfill: 6 * time.Hour}, c)
				waitFor(t, "the entries", func() bool { p, _ := c.position(l.ListLog().ID); return p.Next == 600 })
				if names := c.names(); len(names) != 200 || names[0] != "e400.example" {
					t.Errorf("backfill read %d names starting at %v", len(names), names[:min(1, len(names))])
				}
			})
		})
	}
}

func TestHostileLogs(t *testing.T) {
	ca := ctlogtest.NewCA()
	t.Run("entry that is not a certificate", func(t *testing.T) {
		for _, kind := range kinds {
			l := ctlogtest.NewLog(t, kind, "Garbage"+kind[:3])
			l.Add(ca.CertEntry("before.example"))
			l.Add(ctlogtest.Entry{Timestamp: time.Now(), Cert: []byte("\x30\x03not DER at all")})
			l.Add(ctlogtest.TBSEntry(ctlogtest.TBS{Serial: 7, Issuer: "Evil\u202eCA", BMPIssuer: true, NotBefore: time.Now(), After: time.Now().Add(time.Hour),
				Names: append([]string{"hp-support.example", strings.Repeat("a", 5000) + ".example", "bad\x1bname.example"}, slices.Repeat([]string{"x.example"}, 3000)...)}, time.Now()))
			l.Add(ca.CertEntry("after.example"))
			l.Publish()
			c := newCollector()
			stats := &watcher.Stats{}
			src, err := ctlog.New(ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0), Log: quietLog(), Poll: 10 * time.Millisecond, Positions: c})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- src.Run(ctx, c.emit, stats) }()
			waitFor(t, "the entries", func() bool { p, _ := c.position(l.ListLog().ID); return p.Next == 4 })
			cancel()
			<-done
			names := c.names()
			if !slices.Contains(names, "before.example") || !slices.Contains(names, "after.example") || !slices.Contains(names, "hp-support.example") {
				t.Errorf("%s: good entries around a bad one were lost: %v", kind, names[:min(5, len(names))])
			}
			if stats.Malformed.Load() != 1 {
				t.Errorf("%s: malformed entries %d, want 1", kind, stats.Malformed.Load())
			}
			if len(names) > 2+1000 {
				t.Errorf("%s: %d names kept from one entry", kind, len(names))
			}
			for _, n := range names {
				if len(n) > 260 { // other checks of names are the scorer's (an invalid name is never stored)
					t.Errorf("%s: kept name %q", kind, n[:min(40, len(n))])
				}
			}
			c.mu.Lock()
			for _, ev := range c.events {
				if strings.ContainsRune(ev.Cert.Issuer, '\u202e') {
					t.Errorf("%s: issuer kept a bidi control: %q", kind, ev.Cert.Issuer)
				}
			}
			c.mu.Unlock()
		}
	})
	t.Run("huge response", func(t *testing.T) {
		for _, kind := range kinds {
			l := ctlogtest.NewLog(t, kind, "Huge"+kind[:3])
			grow(l, ca, "h", 3)
			var served atomic.Int64
			l.Hook = func(w http.ResponseWriter, r *http.Request) bool {
				if ctlogtest.IsHead(r) {
					return false
				}
				chunk := bytes.Repeat([]byte("A"), 1<<20)
				for range 64 { // 64 MB: more than any limit
					if _, err := w.Write(chunk); err != nil {
						return true
					}
					served.Add(1)
				}
				return true
			}
			c := newCollector()
			src, _ := run(t, ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0)}, c)
			waitFor(t, "the refusal", func() bool { return statusOf(src, "Huge"+kind[:3]).LastError != "" })
			st := statusOf(src, "Huge"+kind[:3])
			if !strings.Contains(st.LastError, "larger than allowed") && !strings.Contains(st.LastError, "does not") && !strings.Contains(st.LastError, "not the get-entries JSON") {
				t.Errorf("%s: last error %q", kind, st.LastError)
			}
			if len(c.names()) != 0 {
				t.Errorf("%s: ingested from a garbage answer", kind)
			}
		}
	})
}

// A static-ct-api log whose checkpoint origin is not the one the log list's submission URL
// gives (TesseraCT signs "host/path" without the port) is followed: the origin is the
// checkpoint's first line, the signature checked with the list's key. A checkpoint signed by
// another key under that origin is refused, and the error says which origin and key id were
// expected and which were found.
func TestCheckpointOriginFromTheCheckpoint(t *testing.T) {
	ca := ctlogtest.NewCA()
	l := ctlogtest.NewLog(t, ctlog.KindStatic, "Tessera")
	listed := l.ListLog() // the origin as the list implies it: host:port/tessera
	l.Origin = "127.0.0.1/tessera"
	grow(l, ca, "first", 5)
	c := newCollector()
	logs := &syncBuffer{}
	src, _ := run(t, ctlog.Config{List: &ctlog.List{Version: "test", Source: "test", Logs: []ctlog.Log{listed}}, FromIndex: index(0),
		Log: slog.New(slog.NewTextHandler(logs, nil))}, c)
	waitFor(t, "the entries under the checkpoint's origin", func() bool { p, _ := c.position(listed.ID); return p.Next == 5 })

	// Another key signs under the same origin: refused, with both key ids named.
	lie := forgeHeads(l)
	grow(l, ca, "after", 5)
	lie(l.SignedHead(ctlogtest.NewKey(), l.Size(), l.RootAt(l.Size())))
	l.Serve()
	waitFor(t, "the refusal", func() bool { return statusOf(src, "Tessera").VerifyFailures > 0 })
	if p, _ := c.position(listed.ID); p.Next != 5 {
		t.Errorf("read up to %d from a checkpoint another key signed", p.Next)
	}
	if msg := logs.String(); !strings.Contains(msg, "expected origin") || !strings.Contains(msg, "127.0.0.1/tessera") || !strings.Contains(msg, "key id") {
		t.Errorf("the error does not say what differs:\n%s", msg)
	}
}

// A caught-up static-ct-api log is asked for its checkpoint conditionally: an unchanged one is
// a 304 (not an error), and a new one is read as soon as it is published.
func TestCheckpointAskedConditionally(t *testing.T) {
	ca := ctlogtest.NewCA()
	l := ctlogtest.NewLog(t, ctlog.KindStatic, "Cached")
	grow(l, ca, "a", 3)
	c := newCollector()
	src, _ := run(t, ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0)}, c)
	id := l.ListLog().ID
	waitFor(t, "the first entries", func() bool { p, _ := c.position(id); return p.Next == 3 })
	waitFor(t, "conditional requests answered 304", func() bool { return l.NotModified() >= 3 })
	grow(l, ca, "b", 2)
	waitFor(t, "the new entries", func() bool { p, _ := c.position(id); return p.Next == 5 })
	if st := statusOf(src, "Cached"); st.HTTPErrors != 0 {
		t.Errorf("304s counted as HTTP errors: %d", st.HTTPErrors)
	}
}

// An RFC 6962 log that answers get-entries with more entries than were asked for (millions of
// tiny ones, under the body limit) is refused while the answer is read: the entries are not
// all decoded first.
func TestTooManyEntriesRefusedWhileReading(t *testing.T) {
	ca := ctlogtest.NewCA()
	l := ctlogtest.NewLog(t, ctlog.KindRFC6962, "Flood")
	grow(l, ca, "f", 3)
	var served atomic.Int64
	l.Hook = func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "get-entries") {
			return false
		}
		w.Write([]byte(`{"entries":[`))
		chunk := bytes.Repeat([]byte(`{},`), 1<<16)
		for range 64 { // about 4 million entries, 12 MB
			if _, err := w.Write(chunk); err != nil {
				return true
			}
			served.Add(1)
		}
		w.Write([]byte(`{}]}`))
		return true
	}
	// What the process allocates while the flood is read, and the live heap's peak, sampled:
	// decoding every entry of the answer before trimming it took about 48 bytes an entry
	// (190 MB here, gigabytes with a 16 MB answer and four requests in flight).
	runtime.GC()
	allocBefore, heapBefore := heapMetrics()
	var peak atomic.Uint64
	sampling, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sampling.Done():
				return
			case <-tick.C:
				if _, h := heapMetrics(); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
	}()
	c := newCollector()
	src, _ := run(t, ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0)}, c)
	waitFor(t, "the refusal", func() bool {
		return strings.Contains(statusOf(src, "Flood").LastError, "more than the 3 entries asked for")
	})
	stopSampling()
	<-sampled
	allocAfter, _ := heapMetrics()
	if len(c.names()) != 0 {
		t.Error("ingested entries from a flooded answer")
	}
	const bound = 64 << 20
	allocated := allocAfter - allocBefore
	grown := int64(peak.Load()) - int64(heapBefore)
	t.Logf("flood of about 4 million entries: %d MB allocated, live heap peak %+d MB", allocated>>20, grown>>20)
	if allocated > bound || grown > bound {
		t.Errorf("a flooded answer cost %d MB allocated, %d MB of live heap; bound %d MB", allocated>>20, grown>>20, bound>>20)
	}
}

// heapMetrics reads, with runtime/metrics, the bytes allocated so far and the bytes of heap
// objects now (live or not yet swept).
func heapMetrics() (allocated, heap uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// An entry that is in the tree but cannot be read (a certificate of 11 MB; an entry type RFC
// 6962 does not define) is counted as malformed, named in a log line with its index, and the
// entries around it, in the same batch, are delivered: the log is not stalled on it.
func TestUnreadableEntriesDoNotStallTheLog(t *testing.T) {
	ca := ctlogtest.NewCA()
	huge := bytes.Repeat([]byte{0x30}, 11<<20)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l := ctlogtest.NewLog(t, kind, "Odd")
			grow(l, ca, "a", 3)
			l.Add(ctlogtest.Entry{Timestamp: time.Now(), Cert: huge}, ctlogtest.UnknownTypeEntry(7, []byte("whatever this is")))
			grow(l, ca, "b", 3)
			logs := &syncBuffer{}
			c := newCollector()
			src, _, stats := runStats(t, ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0), Log: slog.New(slog.NewTextHandler(logs, nil))}, c)
			waitFor(t, "the entries after the unreadable ones", func() bool { p, _ := c.position(l.ListLog().ID); return p.Next == 8 })
			names := c.names()
			for _, want := range []string{"a0.example", "a2.example", "b0.example", "b2.example"} {
				if !slices.Contains(names, want) {
					t.Errorf("%s not delivered: %v", want, names)
				}
			}
			st := statusOf(src, "Odd")
			if stats.Malformed.Load() != 2 || st.Malformed != 2 {
				t.Errorf("malformed: stats %d, status %d; want 2", stats.Malformed.Load(), st.Malformed)
			}
			if st.VerifyFailures != 0 || st.LastError != "" {
				t.Errorf("an unreadable entry was taken for a verification failure: %d %q", st.VerifyFailures, st.LastError)
			}
			out := logs.String()
			if !strings.Contains(out, "counted as malformed") || !strings.Contains(out, "first_index=3") || !strings.Contains(out, "log=") {
				t.Errorf("the log line does not name the log and the index:\n%s", out)
			}
		})
	}
}

// In a data tile, an entry of unknown type whose tail is like no known type's cannot be split
// from the entries after it: those of its tile are counted as unreadable and the next tile is
// read. A tile garbled on the way (an HTML page served with 200) is not skipped: nothing in it
// hashes to the tree, and it is refused as a verification failure.
func TestUnsplittableDataTile(t *testing.T) {
	ca := ctlogtest.NewCA()
	t.Run("unknown tail", func(t *testing.T) {
		l := ctlogtest.NewLog(t, ctlog.KindStatic, "Tail")
		grow(l, ca, "a", 3)
		odd := ctlogtest.UnknownTypeEntry(9, []byte("opaque"))
		odd.RawTail = []byte("\x00\x05hello")
		l.Add(odd)
		grow(l, ca, "b", 256-4)
		grow(l, ca, "c", 3)
		c := newCollector()
		src, _, stats := runStats(t, ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0)}, c)
		waitFor(t, "the next tile", func() bool { p, _ := c.position(l.ListLog().ID); return p.Next == 259 })
		names := c.names()
		if !slices.Contains(names, "a2.example") || !slices.Contains(names, "c0.example") || slices.Contains(names, "b0.example") {
			t.Errorf("delivered: %d names, a2 %v, c0 %v, b0 %v", len(names), slices.Contains(names, "a2.example"), slices.Contains(names, "c0.example"), slices.Contains(names, "b0.example"))
		}
		if got := stats.Malformed.Load(); got != 1+252 {
			t.Errorf("malformed %d, want the unknown entry and the 252 after it in its tile", got)
		}
		if st := statusOf(src, "Tail"); st.VerifyFailures != 0 {
			t.Errorf("verification failures %d: %s", st.VerifyFailures, st.LastError)
		}
	})
	t.Run("garbled tile", func(t *testing.T) {
		l := ctlogtest.NewLog(t, ctlog.KindStatic, "Garbled")
		grow(l, ca, "g", 5)
		l.Hook = func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/tile/data/") {
				return false
			}
			w.Write([]byte("<!DOCTYPE html><html><body>Service temporarily unavailable</body></html>"))
			return true
		}
		c := newCollector()
		src, _, stats := runStats(t, ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0)}, c)
		waitFor(t, "the refusal", func() bool { return statusOf(src, "Garbled").VerifyFailures > 0 })
		if p, _ := c.position(l.ListLog().ID); p.Next != 0 || stats.Malformed.Load() != 0 {
			t.Errorf("a garbled tile moved the log on: next %d, malformed %d", p.Next, stats.Malformed.Load())
		}
		if st := statusOf(src, "Garbled"); !strings.Contains(st.LastError, "no prefix of it hashes to the tree's leaf") {
			t.Errorf("last error %q", st.LastError)
		}
	})
}

// A log that answers 429 with a Retry-After longer than a request waits silently is said at
// once, with the wait (capped at MaxRetryAfter), and its status holds when it will be asked
// again; 'helpwatch logs' (Heads) says it too instead of waiting.
func TestLongRetryAfterIsSaidAtOnce(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l := ctlogtest.NewLog(t, kind, "Throttled")
			var asked atomic.Int64
			l.Hook = func(w http.ResponseWriter, r *http.Request) bool {
				asked.Add(1)
				w.Header().Set("Retry-After", "999999")
				http.Error(w, "slow down", http.StatusTooManyRequests)
				return true
			}
			logs := &syncBuffer{}
			c := newCollector()
			src, _ := run(t, ctlog.Config{List: ctlogtest.List(l), Log: slog.New(slog.NewTextHandler(logs, nil))}, c)
			waitFor(t, "the wait to be said", func() bool { return !statusOf(src, "Throttled").RetryAt.IsZero() })
			st := statusOf(src, "Throttled")
			if wait := time.Until(st.RetryAt); wait < 9*time.Minute || wait > 10*time.Minute {
				t.Errorf("asked again in %s; want the 10-minute cap", wait)
			}
			if !strings.Contains(st.LastError, "HTTP 429") || !strings.Contains(st.LastError, "asks to wait 277h46m39s (Retry-After), asking again in 10m0s") {
				t.Errorf("last error %q", st.LastError)
			}
			if n := asked.Load(); n != 1 {
				t.Errorf("asked %d times while told to wait", n)
			}
			waitFor(t, "the log line", func() bool { return strings.Contains(logs.String(), "asks us to wait") })
			if out := logs.String(); !strings.Contains(out, "retry_in=10m0s") || !strings.Contains(out, "Throttled") {
				t.Errorf("log line:\n%s", out)
			}
			heads := ctlog.Heads(context.Background(), src, nil, true)
			if len(heads) != 1 || !strings.Contains(heads[0].LastError, "asks to wait") {
				t.Errorf("Heads: %+v", heads)
			}
		})
	}
}

// A log behind load balancers answers now and then from a frontend that lags: an older head,
// honestly signed, a prefix of the verified tree. It is proved and ignored, never taken for a
// shrunk or forked tree, and the log is read on from the newer heads.
func TestOlderHeadsFromALaggingFrontendAreIgnored(t *testing.T) {
	ca := ctlogtest.NewCA()
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			l := ctlogtest.NewLog(t, kind, "Lagging")
			grow(l, ca, "first", 10)
			stale := l.SignedHead(nil, 4, l.RootAt(4))
			var heads atomic.Int64
			l.Hook = func(w http.ResponseWriter, r *http.Request) bool {
				if ctlogtest.IsHead(r) && heads.Add(1)%2 == 0 {
					w.Write(stale)
					return true
				}
				return false
			}
			c := newCollector()
			src, _ := run(t, ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0)}, c)
			id := l.ListLog().ID
			waitFor(t, "the first entries", func() bool { p, _ := c.position(id); return p.Next == 10 })
			grow(l, ca, "second", 5)
			waitFor(t, "the entries after the stale heads", func() bool { p, _ := c.position(id); return p.Next == 15 })
			waitFor(t, "a stale head", func() bool { return statusOf(src, "Lagging").StaleHeads > 0 })
			if st := statusOf(src, "Lagging"); st.VerifyFailures != 0 {
				t.Errorf("a lagging frontend's head was refused: %s", st.LastError)
			}
		})
	}
}
