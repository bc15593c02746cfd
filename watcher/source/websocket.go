package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/helpwatch/helpwatch/watcher"
)

// Stream follows any certstream-compatible websocket URL: certstream-server-go's `/`,
// `/full-stream` and `/domains-only`, or the Python server (which sends JSON heartbeats).
// It reconnects forever with backoff until its context ends.
type Stream struct {
	URL string
	// Dialer defaults to a 10 s handshake timeout; tests point NetDialContext at 127.0.0.1.
	Dialer *websocket.Dialer
	Header http.Header
	// PingInterval is how often the client pings; servers that never send anything still answer
	// pings, so a silent but healthy connection is told apart from a dead one.
	PingInterval time.Duration
	// ReadTimeout is how long a connection may stay silent (no frame, no pong) before it is
	// considered dead and redialled. Every frame and pong renews it.
	ReadTimeout time.Duration
	// MaxFrame bounds one frame; a larger frame ends the connection (websocket cannot skip it).
	MaxFrame int64
	Backoff  Backoff
	Log      *slog.Logger
	// Raw, when set, receives every certificate or names frame after it decoded (for `record`).
	// The slice is only valid during the call.
	Raw func(frame []byte)

	// wait paces reconnects (default Sleep); tests record the waits instead of timing them.
	wait func(ctx context.Context, d time.Duration) error
}

func (s *Stream) Live() bool     { return true }
func (s *Stream) String() string { return s.URL }

func (s *Stream) defaults() {
	if s.Dialer == nil {
		s.Dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, Proxy: http.ProxyFromEnvironment}
	}
	if s.PingInterval <= 0 {
		s.PingInterval = 15 * time.Second
	}
	if s.ReadTimeout <= 0 {
		s.ReadTimeout = 60 * time.Second
	}
	if s.MaxFrame <= 0 {
		s.MaxFrame = MaxFrameBytes
	}
	if s.Backoff.Min <= 0 {
		s.Backoff.Min = time.Second
	}
	if s.Backoff.Max <= 0 {
		s.Backoff.Max = time.Minute
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.wait == nil {
		s.wait = Sleep
	}
}

// Run connects, reads and reconnects until ctx is done; it then returns ctx.Err().
func (s *Stream) Run(ctx context.Context, emit func(*watcher.Event), stats *watcher.Stats) error {
	s.defaults()
	limiter := newLogLimiter(10 * time.Second)
	for {
		conn, resp, err := s.Dialer.DialContext(ctx, s.URL, s.Header)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if ctx.Err() != nil {
			if conn != nil {
				conn.Close()
			}
			return ctx.Err()
		}
		var delivered int64
		if err != nil {
			if resp != nil {
				err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
			}
			stats.Reconnects.Add(1)
			limiter.Warn(s.Log, "dial", "certstream connect failed", "url", s.URL, "err", err)
		} else {
			stats.Connects.Add(1)
			s.Log.Info("certstream connected", "url", s.URL)
			delivered, err = s.session(ctx, conn, emit, stats, limiter)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			stats.Reconnects.Add(1)
			limiter.Warn(s.Log, "lost", "certstream connection lost", "url", s.URL, "err", err, "messages", delivered)
		}
		if delivered > 0 {
			s.Backoff.Reset()
		}
		if err := s.wait(ctx, s.Backoff.Next()); err != nil {
			return err
		}
	}
}

// session reads one connection until it fails or ctx ends; it returns how many messages it
// delivered and why it ended.
func (s *Stream) session(ctx context.Context, conn *websocket.Conn, emit func(*watcher.Event), stats *watcher.Stats, limiter *logLimiter) (int64, error) {
	conn.SetReadLimit(s.MaxFrame)
	renew := func() { conn.SetReadDeadline(time.Now().Add(s.ReadTimeout)) }
	renew()
	conn.SetPongHandler(func(string) error { renew(); stats.Touch(); return nil })
	conn.SetPingHandler(func(data string) error {
		renew()
		stats.Touch()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})

	// The pinger also ends the connection when ctx is cancelled: closing the socket is the only
	// way to interrupt a blocked read.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				// A failed ping shows up as a read error soon enough; nothing to do here.
				_ = conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second))
			case <-ctx.Done():
				_ = conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.CloseNormalClosure, "client stopping"), time.Now().Add(time.Second))
				conn.Close()
				return
			case <-done:
				return
			}
		}
	}()
	defer func() {
		close(done)
		wg.Wait()
		conn.Close()
	}()

	var delivered int64
	for {
		_, frame, err := conn.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				stats.Oversized.Add(1)
				err = fmt.Errorf("frame larger than %d bytes: %w", s.MaxFrame, err)
			}
			return delivered, err
		}
		renew()
		stats.Touch()
		ev := &watcher.Event{}
		kind, err := DecodeMessage(frame, ev)
		if err != nil {
			stats.Malformed.Add(1)
			limiter.Warn(s.Log, "malformed", "skipping malformed certstream frame", "url", s.URL, "problem", DescribeDecodeError(err, frame))
			continue
		}
		if countSkipped(kind, stats) {
			continue
		}
		if s.Raw != nil {
			s.Raw(frame)
		}
		if ev.Seen.IsZero() {
			ev.Seen = time.Now().UTC()
		}
		if kind == KindCertificate {
			trackGap(ev, stats, limiter, s.Log, s.URL)
		}
		stats.Messages.Add(1)
		delivered++
		emit(ev)
	}
}
