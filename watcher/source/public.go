package source

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	certstream "github.com/CaliDog/certstream-go"
	"github.com/gorilla/websocket"
	"github.com/jmoiron/jsonq"

	"github.com/helpwatch/helpwatch/watcher"
)

// PublicURL is where certstream-go connects; the library hardcodes it.
const PublicURL = "wss://certstream.calidog.io"

// Public follows the public CaliDog certstream through github.com/CaliDog/certstream-go and
// wraps the library's flaws:
//   - it redials in a tight loop after every read error: its error channel is unbuffered and
//     it waits for us to read each error, so Public reads errors no faster than its backoff
//     allows, while always draining the message channel;
//   - it cannot be stopped: Public owns the library's connections through the websocket
//     default dialer's NetDialTLSContext, closes the live one on cancellation and holds the
//     library's next dial until another run starts (see dispatchDial);
//   - it reads frames of any size and panics on JSON that is not an object: the connection
//     gate (frameGateConn) ends such connections before the frame reaches the library.
//
// Because the library uses websocket.DefaultDialer, only one Public can run per process.
type Public struct {
	Backoff Backoff
	// after paces the library's redials (default time.After); tests record the waits instead
	// of timing them.
	after func(d time.Duration) <-chan time.Time
	// MaxFrame bounds one message (default MaxFrameBytes).
	MaxFrame int64
	Log      *slog.Logger
	// Raw, when set, receives each certificate message re-encoded as JSON (for `record`).
	Raw func(frame []byte)
	// DialTLS opens the connection the library speaks websocket over. The default dials TLS to
	// the address the library asks for; tests return a plain connection to a local server.
	DialTLS func(ctx context.Context, network, addr string) (net.Conn, error)
	// DrainTimeout bounds the wait for the library to acknowledge shutdown (default 2 s).
	DrainTimeout time.Duration
}

func (p *Public) Live() bool     { return true }
func (p *Public) String() string { return PublicURL + " (certstream-go)" }

// certstream-go's goroutine cannot be stopped, so the process keeps one for its lifetime and
// each Run attaches to it. Between runs the goroutine is parked inside a dial that waits for
// the next run's gate: no traffic, no spinning, and no message from one run leaks into the next.
var (
	publicRunning sync.Mutex
	libraryOnce   sync.Once
	libMessages   chan jsonq.JsonQuery
	libErrors     chan error

	activeMu      sync.Mutex
	activeGate    *dialGate
	activeChanged = make(chan struct{}) // closed and replaced whenever activeGate changes
)

var errGateClosed = errors.New("certstream source stopped")

// ErrPublicBusy is returned when a second Public is started while one runs.
var ErrPublicBusy = errors.New("the public certstream source is already running in this process (certstream-go uses a global dialer)")

// startLibrary takes over websocket.DefaultDialer's TLS dials and starts certstream-go, once
// per process. The dialer field is written before the library's goroutine starts and never
// again: the library reads it on every redial, so swapping it per run would race.
func startLibrary() {
	libraryOnce.Do(func() {
		websocket.DefaultDialer.NetDialTLSContext = dispatchDial
		libMessages, libErrors = certstream.CertStreamEventStream(false)
	})
}

// parkedDials counts the library's dials waiting for a source to run: once one is parked, the
// library cannot connect until the next Run (tests wait for it instead of sleeping).
var parkedDials atomic.Int64

// dispatchDial routes the library's dial to the running source's gate, waiting while none runs.
func dispatchDial(ctx context.Context, network, addr string) (net.Conn, error) {
	for {
		activeMu.Lock()
		g, changed := activeGate, activeChanged
		activeMu.Unlock()
		if g != nil {
			conn, err := g.Dial(ctx, network, addr)
			if !errors.Is(err, errGateClosed) {
				return conn, err
			}
		}
		parkedDials.Add(1)
		select {
		case <-changed:
			parkedDials.Add(-1)
		case <-ctx.Done():
			parkedDials.Add(-1)
			return nil, ctx.Err()
		}
	}
}

func setActiveGate(g *dialGate) {
	activeMu.Lock()
	activeGate = g
	close(activeChanged)
	activeChanged = make(chan struct{})
	activeMu.Unlock()
}

// dialGate hands out the library's connections and takes them back on shutdown.
type dialGate struct {
	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	wrap   func(net.Conn) net.Conn
}

func (g *dialGate) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	g.mu.Lock()
	closed := g.closed
	g.mu.Unlock()
	if closed {
		return nil, errGateClosed
	}
	conn, err := g.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn = g.wrap(conn)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		conn.Close()
		return nil, errGateClosed
	}
	g.conns[conn] = struct{}{}
	return &trackedConn{Conn: conn, gate: g}, nil
}

func (g *dialGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for c := range g.conns {
		c.Close()
	}
}

type trackedConn struct {
	net.Conn
	gate *dialGate
	once sync.Once
}

func (t *trackedConn) Close() error {
	t.once.Do(func() {
		t.gate.mu.Lock()
		delete(t.gate.conns, t.Conn)
		t.gate.mu.Unlock()
	})
	return t.Conn.Close()
}

func defaultDialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}}
	return d.DialContext(ctx, network, addr)
}

// Run follows the public stream until ctx is done.
func (p *Public) Run(ctx context.Context, emit func(*watcher.Event), stats *watcher.Stats) error {
	if !publicRunning.TryLock() {
		return ErrPublicBusy
	}
	defer publicRunning.Unlock()
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	if p.Backoff.Min <= 0 {
		p.Backoff.Min = time.Second
	}
	if p.Backoff.Max <= 0 {
		p.Backoff.Max = time.Minute
	}
	maxFrame := p.MaxFrame
	if maxFrame <= 0 {
		maxFrame = MaxFrameBytes
	}
	dial := p.DialTLS
	if dial == nil {
		dial = defaultDialTLS
	}
	limiter := newLogLimiter(10 * time.Second)
	gate := &dialGate{conns: map[net.Conn]struct{}{}, dial: dial}
	gate.wrap = func(c net.Conn) net.Conn {
		stats.Connects.Add(1)
		return &frameGateConn{Conn: c, maxFrame: uint64(maxFrame), onReject: func(reason string, oversized bool) {
			if oversized {
				stats.Oversized.Add(1)
			} else {
				stats.Malformed.Add(1)
			}
			limiter.Warn(log, "rejected", "ending certstream connection", "url", PublicURL, "reason", reason)
		}}
	}
	startLibrary()
	setActiveGate(gate)
	defer setActiveGate(nil)

	messages, errs := libMessages, libErrors
	var errGate <-chan error // nil while we make the library wait
	after := p.after
	if after == nil {
		after = time.After
	}
	var waitC <-chan time.Time // set while the library is made to wait
	delivered := 0
	armErrors := func() { errGate = errs }
	armErrors()
	for {
		select {
		case <-ctx.Done():
			p.shutdown(gate, messages, errs)
			return ctx.Err()
		case <-waitC:
			waitC = nil
			armErrors()
		case jq := <-messages:
			stats.Touch()
			ev, kind := convertJSONQ(&jq)
			if countSkipped(kind, stats) {
				continue
			}
			if p.Raw != nil {
				if m, err := jq.Object(); err == nil {
					if b, err := json.Marshal(m); err == nil {
						p.Raw(b)
					}
				}
			}
			if kind == KindCertificate {
				trackGap(ev, stats, limiter, log, PublicURL)
			}
			delivered++
			stats.Messages.Add(1)
			emit(ev)
		case err := <-errGate:
			if strings.Contains(err.Error(), "Malformed json") {
				// A message without message_type; the connection is fine.
				stats.Malformed.Add(1)
				limiter.Warn(log, "malformed", "skipping malformed certstream message", "url", PublicURL, "err", err)
				continue
			}
			stats.Reconnects.Add(1)
			limiter.Warn(log, "lost", "certstream connection lost or refused", "url", PublicURL, "err", err, "messages", delivered)
			if delivered > 0 {
				p.Backoff.Reset()
			}
			delivered = 0
			// The library redials as soon as it has handed us this error; the next error (the
			// redial failing, or the new connection dropping) waits for the backoff.
			errGate = nil
			waitC = after(p.Backoff.Next())
		}
	}
}

// shutdown closes the library's connection and waits until it has reported the closed read.
// Messages still in flight are dropped with the stop. After the error the library redials, and
// that dial waits in dispatchDial until the next run: the library is parked with nothing pending.
func (p *Public) shutdown(gate *dialGate, messages <-chan jsonq.JsonQuery, errs <-chan error) {
	gate.close()
	timeout := p.DrainTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-messages: // in flight when we stopped; dropped with the stop
		case <-errs:
			return
		case <-t.C:
			return
		}
	}
}

// convertJSONQ turns the library's untyped value into an event. Missing or mistyped fields
// stay zero: the public stream has changed shape before.
func convertJSONQ(jq *jsonq.JsonQuery) (*watcher.Event, MessageKind) {
	ev := &watcher.Event{Cert: watcher.Certificate{Index: -1}}
	mt, _ := jq.String("message_type")
	switch mt {
	case "heartbeat":
		return ev, KindHeartbeat
	case "certificate_update", "dns_entries":
	default:
		return ev, KindOther
	}
	kind := KindCertificate
	if mt == "dns_entries" {
		kind = KindNames
		if list, err := jq.Array("data"); err == nil {
			ev.Names = stringsOf(list)
			ev.Seen = time.Now().UTC()
			return ev, kind
		}
	}
	if v, err := jq.Float("data", "cert_index"); err == nil && v >= 0 && v < math.MaxInt64 {
		ev.Cert.Index = int64(v)
	}
	ev.Cert.Link, _ = jq.String("data", "cert_link")
	ev.Cert.LogName, _ = jq.String("data", "source", "name")
	ev.Cert.LogURL, _ = jq.String("data", "source", "url")
	ev.Cert.Fingerprint, _ = jq.String("data", "leaf_cert", "fingerprint")
	ev.Seen = unixFloat(jq, "data", "seen")
	ev.Cert.NotBefore = unixFloat(jq, "data", "leaf_cert", "not_before")
	ev.Cert.NotAfter = unixFloat(jq, "data", "leaf_cert", "not_after")
	org, _ := jq.String("data", "leaf_cert", "issuer", "O")
	cn, _ := jq.String("data", "leaf_cert", "issuer", "CN")
	ev.Cert.Issuer = strings.TrimSpace(org + " " + cn)
	if list, err := jq.Array("data", "leaf_cert", "all_domains"); err == nil {
		ev.Names = stringsOf(list)
	} else if cn, err := jq.String("data", "leaf_cert", "subject", "CN"); err == nil && cn != "" && len(cn) <= maxNameBytes {
		ev.Names = []string{cn}
	}
	if ev.Seen.IsZero() {
		ev.Seen = time.Now().UTC()
	}
	ev.Sanitize()
	return ev, kind
}

func stringsOf(list []any) []string {
	out := make([]string, 0, min(len(list), MaxNamesPerMessage))
	for _, v := range list {
		if s, ok := v.(string); ok && s != "" && len(s) <= maxNameBytes && len(out) < MaxNamesPerMessage {
			out = append(out, s)
		}
	}
	return out
}

func unixFloat(jq *jsonq.JsonQuery, path ...string) time.Time {
	v, _ := jq.Float(path...)
	return unixSeconds(v)
}
