// Package enrich learns facts about cases: DNS records (miekg/dns), registration data from
// RDAP first (openrdap/rdap for the bootstrap and the response model) and WHOIS as the fallback
// (likexian/whois and whois-parser). One file per protocol, each with one lookup method;
// Enricher combines them and Worker is the job handler that stores them (the store rescores
// the case from them).
package enrich

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits paces requests per server. Each server (a host name or address) gets its own token
// bucket, so a slow registry never holds back another, and a server that says "slow down" (RDAP
// 429, a WHOIS "limit exceeded" text) is paused, with the pause doubling while it keeps saying
// so. A zero Rate means no limit, for local tests.
type Limits struct {
	Rate  rate.Limit // requests per second per server
	Burst int

	mu      sync.Mutex
	servers map[string]*serverState
}

type serverState struct {
	limiter     *rate.Limiter
	pausedUntil time.Time
	pause       time.Duration
}

func (l *Limits) state(server string) *serverState {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.servers == nil {
		l.servers = map[string]*serverState{}
	}
	st, ok := l.servers[server]
	if !ok {
		r, b := l.Rate, l.Burst
		if r <= 0 {
			r = rate.Inf
		}
		if b <= 0 {
			b = 1
		}
		st = &serverState{limiter: rate.NewLimiter(r, b)}
		l.servers[server] = st
	}
	return st
}

// PausedError says a server asked us to slow down and stays paused past the caller's
// deadline: waiting would be in vain, the work should be tried again at Until.
type PausedError struct {
	Server string
	Until  time.Time
}

func (e *PausedError) Error() string {
	return fmt.Sprintf("%s asked us to slow down; paused until %s", e.Server, e.Until.UTC().Format(time.RFC3339))
}

// Wait blocks until server may be asked again, or ctx ends. A pause that lasts past ctx's
// deadline is not waited out: Wait returns a *PausedError at once.
func (l *Limits) Wait(ctx context.Context, server string) error {
	st := l.state(server)
	l.mu.Lock()
	until := st.pausedUntil
	l.mu.Unlock()
	if dl, ok := ctx.Deadline(); ok && until.After(dl) {
		return &PausedError{Server: server, Until: until}
	}
	if d := time.Until(until); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	return st.limiter.Wait(ctx)
}

// Pause holds server back: for retryAfter when the server said how long, else for a pause that
// starts at 30 s and doubles (up to 30 min) while the server keeps refusing.
func (l *Limits) Pause(server string, retryAfter time.Duration) time.Duration {
	st := l.state(server)
	l.mu.Lock()
	defer l.mu.Unlock()
	d := retryAfter
	if d <= 0 {
		st.pause = min(max(2*st.pause, 30*time.Second), 30*time.Minute)
		d = st.pause
	}
	st.pausedUntil = time.Now().Add(d)
	return d
}

// Recovered ends the doubling after a server answered normally again.
func (l *Limits) Recovered(server string) {
	st := l.state(server)
	l.mu.Lock()
	st.pause = 0
	l.mu.Unlock()
}
