package source

import (
	"context"
	"fmt"
	"github.com/helpwatch/helpwatch/watcher/testkit"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/helpwatch/helpwatch/watcher"
)

// fakeCertstream is a certstream server on 127.0.0.1 whose behaviour per connection is scripted:
// script gets the connection's number (from 1) and the connection, and returning closes it.
type fakeCertstream struct {
	t      *testing.T
	srv    *httptest.Server
	script func(n int, c *websocket.Conn)

	mu       sync.Mutex
	connects []time.Time
}

func newFakeCertstream(t *testing.T, script func(n int, c *websocket.Conn)) *fakeCertstream {
	f := &fakeCertstream{t: t, script: script}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeCertstream) serve(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	f.mu.Lock()
	f.connects = append(f.connects, time.Now())
	n := len(f.connects)
	f.mu.Unlock()
	f.script(n, c)
}

func (f *fakeCertstream) connections() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.connects...)
}

func (f *fakeCertstream) wsURL() string {
	return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/full-stream"
}

// dialTLS connects certstream-go (which insists on wss://certstream.calidog.io) to the fake.
func (f *fakeCertstream) dialTLS(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, f.srv.Listener.Addr().String())
}

func certMessage(name string, index int) string {
	return fmt.Sprintf(`{"message_type":"certificate_update","data":{"cert_index":%d,"cert_link":"","leaf_cert":{"all_domains":[%q],"fingerprint":"FP:%d","issuer":{"O":"Let's Encrypt","CN":"R3"},"not_before":1700000000,"not_after":1707776000},"seen":1700000100.5,"source":{"name":"Test log","url":"log.test/"},"update_type":"X509LogEntry"}}`, index, name, index)
}

func send(c *websocket.Conn, frames ...string) {
	for _, f := range frames {
		if c.WriteMessage(websocket.TextMessage, []byte(f)) != nil {
			return
		}
	}
}

// holdOpen keeps a connection open (answering pings by reading) until the client goes away.
func holdOpen(c *websocket.Conn) {
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

// collector gathers emitted events and lets a test wait for a number of them.
type collector struct {
	mu     sync.Mutex
	events []*watcher.Event
	grew   chan struct{}
}

func newCollector() *collector { return &collector{grew: make(chan struct{}, 1)} }

func (c *collector) emit(ev *watcher.Event) {
	c.mu.Lock()
	c.events = append(c.events, ev)
	c.mu.Unlock()
	select {
	case c.grew <- struct{}{}:
	default:
	}
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

func (c *collector) waitFor(t *testing.T, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for len(c.names()) < n {
		select {
		case <-c.grew:
		case <-deadline:
			t.Fatalf("got %d names, want %d: %v", len(c.names()), n, c.names())
		}
	}
}

func quietLog() *slog.Logger { return slogTo(io.Discard) }

// waitConnections waits until the server has accepted n connections.
func (s *fakeCertstream) waitConnections(t *testing.T, n int, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); len(s.connections()) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections after %s, want %d", len(s.connections()), within, n)
		}
	}
}

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// runSource starts src and returns a stop function that cancels it and checks that Run returns
// promptly with the context's error.
func runSource(t *testing.T, src watcher.Source, col *collector, stats *watcher.Stats) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, col.emit, stats) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != context.Canceled {
				t.Errorf("Run returned %v after cancel, want context.Canceled", err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("Run did not return within 3 s of cancellation")
		}
	}
}

func assertOnce(t *testing.T, got []string, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, n := range got {
		count[n]++
	}
	for _, n := range want {
		if count[n] != 1 {
			t.Errorf("name %s delivered %d times, want exactly once", n, count[n])
		}
	}
	if len(got) != len(want) {
		t.Errorf("delivered %d names, want %d", len(got), len(want))
	}
}

func TestStreamReconnectsAndDeliversEachMessageOnce(t *testing.T) {
	var want []string
	for i := 0; i < 10; i++ {
		want = append(want, fmt.Sprintf("hp-setup-%d.com", i))
	}
	srv := newFakeCertstream(t, func(n int, c *websocket.Conn) {
		switch n {
		case 1: // five messages, junk, a heartbeat, then a hard disconnect
			for i := 0; i < 5; i++ {
				send(c, certMessage(want[i], i))
			}
			send(c, `{"message_type":"certificate_update","data":{"leaf_cert":`, `{"message_type":"heartbeat","timestamp":1.5}`, `[1,2]`)
			c.UnderlyingConn().Close()
		case 2: // domains-only shape, then the rest
			send(c, fmt.Sprintf(`{"message_type":"dns_entries","data":[%q]}`, want[5]))
			for i := 6; i < 10; i++ {
				send(c, certMessage(want[i], i))
			}
			holdOpen(c)
		default:
			holdOpen(c)
		}
	})
	stats := &watcher.Stats{}
	col := newCollector()
	s := &Stream{URL: srv.wsURL(), Backoff: Backoff{Min: 20 * time.Millisecond, Max: 50 * time.Millisecond}, Log: quietLog()}
	stop := runSource(t, s, col, stats)
	col.waitFor(t, 10, 5*time.Second)
	stop()
	assertOnce(t, col.names(), want)
	if stats.Malformed.Load() != 2 || stats.Heartbeats.Load() != 1 || stats.Reconnects.Load() < 1 || stats.Messages.Load() != 10 {
		t.Errorf("stats: malformed %d heartbeats %d reconnects %d messages %d", stats.Malformed.Load(),
			stats.Heartbeats.Load(), stats.Reconnects.Load(), stats.Messages.Load())
	}
	col.mu.Lock()
	ev := col.events[0]
	col.mu.Unlock()
	if ev.Cert.Index != 0 || ev.Cert.Fingerprint != "FP:0" || ev.Cert.Issuer != "Let's Encrypt R3" || ev.Seen.Unix() != 1700000100 {
		t.Errorf("first event decoded as %+v", ev)
	}
}

func TestStreamOversizedFrameEndsConnectionOnly(t *testing.T) {
	srv := newFakeCertstream(t, func(n int, c *websocket.Conn) {
		if n == 1 {
			send(c, certMessage("before.example", 1), `{"message_type":"x","pad":"`+strings.Repeat("a", 5000)+`"}`, certMessage("lost.example", 2))
			holdOpen(c)
			return
		}
		send(c, certMessage("after.example", 3))
		holdOpen(c)
	})
	stats := &watcher.Stats{}
	col := newCollector()
	s := &Stream{URL: srv.wsURL(), MaxFrame: 4096, Backoff: Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond}, Log: quietLog()}
	stop := runSource(t, s, col, stats)
	col.waitFor(t, 2, 5*time.Second)
	stop()
	if got := strings.Join(col.names(), " "); got != "before.example after.example" {
		t.Errorf("names %q", got)
	}
	if stats.Oversized.Load() != 1 {
		t.Errorf("oversized %d, want 1", stats.Oversized.Load())
	}
}

func TestStreamSilenceAndHeartbeats(t *testing.T) {
	srv := newFakeCertstream(t, func(n int, c *websocket.Conn) {
		switch n {
		case 1: // silent and deaf: never reads, so client pings go unanswered
			time.Sleep(2 * time.Second)
		case 2: // heartbeat-only for a while, longer than the read timeout, then a message
			for i := 0; i < 8; i++ {
				send(c, `{"message_type":"heartbeat","timestamp":1}`)
				time.Sleep(50 * time.Millisecond)
			}
			send(c, certMessage("after-silence.example", 7))
			holdOpen(c)
		default:
			holdOpen(c)
		}
	})
	stats := &watcher.Stats{}
	col := newCollector()
	s := &Stream{URL: srv.wsURL(), ReadTimeout: 200 * time.Millisecond, PingInterval: 50 * time.Millisecond,
		Backoff: Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond}, Log: quietLog()}
	stop := runSource(t, s, col, stats)
	col.waitFor(t, 1, 5*time.Second)
	stop()
	// The silent connection was given up (once) and the heartbeat-only one was kept.
	if got := len(srv.connections()); got != 2 {
		t.Errorf("%d connections, want 2 (one dropped for silence, one kept alive by heartbeats)", got)
	}
	if stats.Heartbeats.Load() != 8 {
		t.Errorf("heartbeats %d, want 8", stats.Heartbeats.Load())
	}
}

// waitRecorder stands in for the clock of a source's backoff: it records every wait asked for
// and the number of connections the server had accepted at that moment, and returns at once.
type waitRecorder struct {
	mu    sync.Mutex
	waits []time.Duration
	conns []int // connections accepted when each wait was asked for
	srv   *fakeCertstream
}

func (w *waitRecorder) record(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waits = append(w.waits, d)
	w.conns = append(w.conns, len(w.srv.connections()))
}

func (w *waitRecorder) sleep(ctx context.Context, d time.Duration) error {
	w.record(d)
	return ctx.Err()
}

func (w *waitRecorder) after(d time.Duration) <-chan time.Time {
	w.record(d)
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func TestStreamReconnectPacing(t *testing.T) {
	srv := newFakeCertstream(t, func(n int, c *websocket.Conn) {}) // accept and hang up at once
	stats := &watcher.Stats{}
	col := newCollector()
	rec := &waitRecorder{srv: srv}
	min, max := 100*time.Millisecond, 400*time.Millisecond
	s := &Stream{URL: srv.wsURL(), Backoff: Backoff{Min: min, Max: max}, Log: quietLog(), wait: rec.sleep}
	stop := runSource(t, s, col, stats)
	srv.waitConnections(t, 6, 10*time.Second)
	stop()
	assertPaced(t, rec, len(srv.connections()), 0, min, max)
}

// assertPaced checks that every reconnect after the first free ones waited for the backoff:
// a wait was asked for between each two connections, none under the jitter floor (half the
// minimum) or over the maximum, and the waits grew while nothing was delivered.
func assertPaced(t *testing.T, rec *waitRecorder, conns, free int, min, max time.Duration) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if conns < 2 {
		t.Fatalf("only %d connections; the client did not reconnect", conns)
	}
	// A connection made without a wait before it would make the connections outnumber the
	// waits by more than the free ones.
	if len(rec.waits)+1+free < conns {
		t.Errorf("%d connections after %d waits: reconnects are not paced", conns, len(rec.waits))
	}
	for i, at := range rec.conns {
		if at > i+1+free {
			t.Errorf("wait %d was asked for after %d connections: a reconnect came without a wait", i+1, at)
		}
	}
	for i, d := range rec.waits {
		if d < min/2 || d > max {
			t.Errorf("wait %d is %v, outside [%v, %v]", i+1, d, min/2, max)
		}
	}
	// Backoff grows: from the third wait on the floor is the doubled minimum.
	for i, d := range rec.waits {
		if i >= 2 && d < min {
			t.Errorf("wait %d is %v: the backoff did not grow past %v", i+1, d, min)
		}
	}
}

func TestStreamServerRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	phase := "before"
	var mu sync.Mutex
	var open []*websocket.Conn
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		mu.Lock()
		p := phase
		open = append(open, c)
		mu.Unlock()
		send(c, certMessage(p+"-restart.example", 1))
		holdOpen(c)
	})
	srv1 := &http.Server{Handler: handler}
	go srv1.Serve(ln)

	stats := &watcher.Stats{}
	col := newCollector()
	s := &Stream{URL: "ws://" + addr + "/", Backoff: Backoff{Min: 20 * time.Millisecond, Max: 80 * time.Millisecond}, Log: quietLog()}
	stop := runSource(t, s, col, stats)
	col.waitFor(t, 1, 5*time.Second)

	// The server goes away, and with it the connection (http.Server.Close leaves hijacked
	// connections open, so close them as a dying process would).
	srv1.Close()
	mu.Lock()
	for _, c := range open {
		c.UnderlyingConn().Close()
	}
	phase = "after"
	mu.Unlock()
	// The client notices before the server comes back.
	for deadline := time.Now().Add(5 * time.Second); stats.Reconnects.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the client did not notice the lost connection")
		}
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		stop()
		t.Skipf("could not listen on %s again: %v", addr, err)
	}
	srv2 := &http.Server{Handler: handler}
	go srv2.Serve(ln2)
	defer srv2.Close()
	col.waitFor(t, 2, 5*time.Second)
	stop()
	assertOnce(t, col.names(), []string{"before-restart.example", "after-restart.example"})
}

func TestPublicSourceThroughCertstreamGo(t *testing.T) {
	srv := newFakeCertstream(t, func(n int, c *websocket.Conn) {
		switch n {
		case 1:
			send(c, certMessage("canon-setup-1.com", 1), `{"message_type":"heartbeat","timestamp":2}`, `{"no_type":1}`)
			send(c, `[1,2,3]`) // would panic jsonq.NewQuery inside the library
			send(c, certMessage("never-delivered.com", 9))
			holdOpen(c)
		case 2:
			send(c, fmt.Sprintf(`{"message_type":"dns_entries","data":[%q]}`, "epson-help-2.com"))
			send(c, `null`)
			holdOpen(c)
		default:
			send(c, certMessage("canon-setup-3.com", 3))
			holdOpen(c)
		}
	})
	stats := &watcher.Stats{}
	col := newCollector()
	var recorded []string
	var recMu sync.Mutex
	p := &Public{DialTLS: srv.dialTLS, Backoff: Backoff{Min: 20 * time.Millisecond, Max: 40 * time.Millisecond}, Log: quietLog(),
		Raw: func(b []byte) { recMu.Lock(); recorded = append(recorded, string(b)); recMu.Unlock() }}
	stop := runSource(t, p, col, stats)
	col.waitFor(t, 3, 10*time.Second)
	stop()
	assertOnce(t, col.names(), []string{"canon-setup-1.com", "epson-help-2.com", "canon-setup-3.com"})
	if stats.Malformed.Load() != 3 || stats.Heartbeats.Load() != 1 {
		t.Errorf("malformed %d (want 3: no type, array, null), heartbeats %d", stats.Malformed.Load(), stats.Heartbeats.Load())
	}
	col.mu.Lock()
	ev := col.events[0]
	col.mu.Unlock()
	if ev.Cert.Index != 1 || ev.Cert.Fingerprint != "FP:1" || ev.Cert.Issuer != "Let's Encrypt R3" || ev.Cert.LogURL != "log.test/" {
		t.Errorf("converted event %+v", ev.Cert)
	}
	// What was recorded replays to the same names.
	recMu.Lock()
	defer recMu.Unlock()
	if len(recorded) != 3 {
		t.Fatalf("recorded %d messages, want 3", len(recorded))
	}
	replayed := &watcher.Event{}
	if _, err := DecodeMessage([]byte(recorded[0]), replayed); err != nil || replayed.Names[0] != "canon-setup-1.com" {
		t.Errorf("recorded frame does not decode: %v %v", err, replayed.Names)
	}

	// Stopped means stopped: the library's next dial is parked until a source runs again, and
	// no connection was made after the stop.
	before := len(srv.connections())
	testkit.WaitFor(t, "the library's redial to be parked", 10*time.Second, func() bool { return parkedDials.Load() > 0 })
	if after := len(srv.connections()); after != before {
		t.Errorf("certstream-go reconnected %d times after the source stopped", after-before)
	}
}

func TestPublicSourcePacesLibraryRedials(t *testing.T) {
	srv := newFakeCertstream(t, func(n int, c *websocket.Conn) {}) // hang up at once, every time
	stats := &watcher.Stats{}
	col := newCollector()
	rec := &waitRecorder{srv: srv}
	min, max := 100*time.Millisecond, 400*time.Millisecond
	p := &Public{DialTLS: srv.dialTLS, Backoff: Backoff{Min: min, Max: max}, Log: quietLog(), after: rec.after}
	stop := runSource(t, p, col, stats)
	srv.waitConnections(t, 6, 10*time.Second)
	stop()
	// The library redials right after handing over an error, before we can make it wait: one
	// connection comes free; every one after it waited for the backoff.
	assertPaced(t, rec, len(srv.connections()), 1, min, max)
}

func TestPublicSourceRejectsOversizedFrames(t *testing.T) {
	srv := newFakeCertstream(t, func(n int, c *websocket.Conn) {
		if n == 1 {
			send(c, certMessage("small-1.com", 1), `{"message_type":"x","pad":"`+strings.Repeat("a", 10000)+`"}`)
			holdOpen(c)
			return
		}
		send(c, certMessage("small-2.com", 2))
		holdOpen(c)
	})
	stats := &watcher.Stats{}
	col := newCollector()
	p := &Public{DialTLS: srv.dialTLS, MaxFrame: 4096, Backoff: Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond}, Log: quietLog()}
	stop := runSource(t, p, col, stats)
	col.waitFor(t, 2, 10*time.Second)
	stop()
	assertOnce(t, col.names(), []string{"small-1.com", "small-2.com"})
	if stats.Oversized.Load() != 1 {
		t.Errorf("oversized %d, want 1", stats.Oversized.Load())
	}
}

func TestStreamCountsWhatTheServerSkipped(t *testing.T) {
	// A server restart: indexes 0-4, then 905-909 on the new connection (900 lost, as the real
	// certstream-server-go did), then a repeat of 909 that counts nothing.
	srv := newFakeCertstream(t, func(n int, c *websocket.Conn) {
		switch n {
		case 1:
			for i := 0; i < 5; i++ {
				send(c, certMessage(fmt.Sprintf("a%d.example", i), i))
			}
			c.UnderlyingConn().Close()
		case 2:
			for i := 905; i < 910; i++ {
				send(c, certMessage(fmt.Sprintf("b%d.example", i), i))
			}
			send(c, certMessage("again.example", 909))
			holdOpen(c)
		default:
			holdOpen(c)
		}
	})
	stats := &watcher.Stats{}
	col := newCollector()
	var logs syncBuf
	s := &Stream{URL: srv.wsURL(), Backoff: Backoff{Min: 20 * time.Millisecond, Max: 50 * time.Millisecond}, Log: slogTo(&logs)}
	stop := runSource(t, s, col, stats)
	col.waitFor(t, 11, 5*time.Second)
	stop()
	if got := stats.Gaps.Missed(); got["log.test/"] != 900 || stats.Gaps.Total() != 900 {
		t.Errorf("missed %v, want 900 for log.test/", got)
	}
	if !strings.Contains(logs.String(), "missed=900") {
		t.Errorf("the gap was not said:\n%s", logs.String())
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
