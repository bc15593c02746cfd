package source

import (
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff paces reconnects: each failure doubles the wait from Min up to Max, and the wait is
// drawn from its upper half so that many clients cut off at once do not return in step.
type Backoff struct {
	Min, Max time.Duration
	failures int
}

// Next returns how long to wait before the next attempt and counts one more failure.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = time.Second
	}
	if hi < lo {
		hi = lo
	}
	d := lo
	for i := 0; i < b.failures && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	b.failures++
	return d/2 + rand.N(d/2+1)
}

// Reset starts over from Min after a connection that worked.
func (b *Backoff) Reset() { b.failures = 0 }

// logLimiter keeps a hostile or broken server from flooding the log: at most one line per
// interval per kind, with how many were suppressed since.
type logLimiter struct {
	mu         sync.Mutex
	interval   time.Duration
	last       map[string]time.Time
	suppressed map[string]int
}

func newLogLimiter(interval time.Duration) *logLimiter {
	return &logLimiter{interval: interval, last: map[string]time.Time{}, suppressed: map[string]int{}}
}

func (l *logLimiter) Warn(log *slog.Logger, kind, msg string, args ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last[kind]) < l.interval {
		l.suppressed[kind]++
		l.mu.Unlock()
		return
	}
	n := l.suppressed[kind]
	l.last[kind], l.suppressed[kind] = now, 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed_since_last", n)
	}
	log.Warn(msg, args...)
}
