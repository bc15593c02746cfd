package ctlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/helpwatch/helpwatch/watcher/source"
)

// Response limits by what is asked for. A log is not trusted with our memory: a body longer
// than its kind can legitimately be is cut off and the request fails.
const (
	maxHeadBytes    = 64 << 10 // get-sth, checkpoint, proofs
	maxHashTile     = 8 << 10  // 256 hashes of 32 bytes
	maxDataTile     = 16 << 20 // 256 entries with their precertificates
	maxEntriesBytes = 16 << 20 // one get-entries answer
	maxOtherBytes   = 1 << 20
)

func bodyLimit(path string) int64 {
	switch {
	case strings.Contains(path, "/tile/data/"):
		return maxDataTile
	case strings.Contains(path, "/tile/"):
		return maxHashTile
	case strings.HasSuffix(path, "/get-entries"):
		return maxEntriesBytes
	case strings.HasSuffix(path, "/checkpoint"), strings.HasSuffix(path, "/get-sth"),
		strings.HasSuffix(path, "/get-sth-consistency"), strings.HasSuffix(path, "/get-proof-by-hash"):
		return maxHeadBytes
	}
	return maxOtherBytes
}

// ErrTooLarge is the error of a response longer than its kind allows.
var ErrTooLarge = errors.New("response larger than allowed")

// Politeness configures how hard one log is asked.
type Politeness struct {
	// Rate bounds the requests per second to one log (0: unlimited); Burst is the bucket.
	Rate  float64
	Burst int
	// Parallel bounds the requests in flight to one log (default 4).
	Parallel int
	// Retries is how many times a 429 or 5xx answer is retried before the request fails
	// (default 4); MaxRetryAfter caps how long a Retry-After may make us wait (default 10 min).
	Retries       int
	MaxRetryAfter time.Duration
	// Timeout bounds one request (default 30 s): a log that hangs stalls only itself.
	Timeout time.Duration
}

func (p *Politeness) defaults() {
	if p.Parallel <= 0 {
		p.Parallel = 4
	}
	if p.Retries <= 0 {
		p.Retries = 4
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = 10 * time.Minute
	}
	if p.Timeout <= 0 {
		p.Timeout = 30 * time.Second
	}
	if p.Burst <= 0 {
		p.Burst = max(1, int(p.Rate))
	}
}

// transport is one log's http.RoundTripper: it waits for the log's rate limit and a free
// request slot (per log, and process-wide to bound memory), retries 429 and 5xx answers
// honouring Retry-After, with exponential backoff and jitter otherwise, and cuts bodies off
// at the limit of what was asked for.
type transport struct {
	base    http.RoundTripper
	p       Politeness
	limiter *rate.Limiter
	slots   chan struct{}
	global  chan struct{}
	errors  *atomic.Int64 // HTTP errors and failed connections, per attempt
	ua      string
}

func newTransport(base http.RoundTripper, p Politeness, global chan struct{}, errs *atomic.Int64, ua string) *transport {
	p.defaults()
	t := &transport{base: base, p: p, slots: make(chan struct{}, p.Parallel), global: global, errors: errs, ua: ua}
	if p.Rate > 0 {
		t.limiter = rate.NewLimiter(rate.Limit(p.Rate), p.Burst)
	}
	return t
}

// StatusError is a log's answer that was not 200 OK after the retries.
type StatusError struct {
	URL    string
	Status int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// RetryLaterError is a 429 or 5xx answer whose Retry-After asks for a wait longer than the
// transport keeps a request waiting (LongWait): the request fails at once, so that the follower
// can say so with the wait, show it in its status, and ask again after Wait.
type RetryLaterError struct {
	URL    string
	Status int
	// Asked is the wait the log asked for; Wait is what will be waited (capped by
	// MaxRetryAfter).
	Asked, Wait time.Duration
}

func (e *RetryLaterError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d %s; the log asks to wait %s (Retry-After)", e.URL, e.Status, http.StatusText(e.Status), e.Asked)
	if e.Wait < e.Asked {
		s += fmt.Sprintf(", asking again in %s", e.Wait)
	}
	return s
}

// LongWait is the longest Retry-After a request waits for silently; a longer one fails the
// request with a RetryLaterError.
const LongWait = 30 * time.Second

func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var lastErr error
	pause := source.Backoff{Min: time.Second, Max: time.Minute}
	for attempt := 0; ; attempt++ {
		if t.limiter != nil {
			if err := t.limiter.Wait(ctx); err != nil {
				return nil, err
			}
		}
		if err := acquire(ctx, t.slots, t.global); err != nil {
			return nil, err
		}
		// Each attempt, body included, has its own deadline: a log that stops answering, or
		// answers a byte a minute, stalls only its own follower and only for so long.
		actx, cancel := context.WithTimeout(ctx, t.p.Timeout)
		release := sync.OnceFunc(func() { cancel(); releaseSlots(t.slots, t.global) })
		r := req.Clone(actx)
		if t.ua != "" {
			r.Header.Set("User-Agent", t.ua)
		}
		resp, err := t.base.RoundTrip(r)
		var wait time.Duration
		switch {
		case err != nil:
			release()
			t.errors.Add(1)
			if ctx.Err() != nil {
				return nil, err
			}
			lastErr = err
		case resp.StatusCode == http.StatusOK:
			resp.Body = &limitedBody{rc: resp.Body, left: bodyLimit(req.URL.Path), url: req.URL.String(), release: release}
			return resp, nil
		case resp.StatusCode == http.StatusNotModified && (r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != ""):
			// The answer to a conditional request: nothing changed, not an error.
			resp.Body.Close()
			release()
			return resp, nil
		case retryable(resp.StatusCode):
			t.errors.Add(1)
			asked := retryAfter(resp.Header.Get("Retry-After"), time.Now(), maxRetryAfterRead)
			wait = min(asked, t.p.MaxRetryAfter)
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			release()
			if asked > LongWait {
				return nil, &RetryLaterError{URL: req.URL.String(), Status: resp.StatusCode, Asked: asked, Wait: wait}
			}
			lastErr = &StatusError{URL: req.URL.String(), Status: resp.StatusCode}
		default:
			t.errors.Add(1)
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			release()
			return nil, &StatusError{URL: req.URL.String(), Status: resp.StatusCode}
		}
		if attempt >= t.p.Retries {
			return nil, lastErr
		}
		if wait <= 0 {
			wait = pause.Next()
		}
		if err := source.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func acquire(ctx context.Context, slots ...chan struct{}) error {
	for i, s := range slots {
		if s == nil {
			continue
		}
		select {
		case s <- struct{}{}:
		case <-ctx.Done():
			releaseSlots(slots[:i]...)
			return ctx.Err()
		}
	}
	return nil
}

func releaseSlots(slots ...chan struct{}) {
	for _, s := range slots {
		if s != nil {
			<-s
		}
	}
}

// maxRetryAfterRead bounds the Retry-After read (a year), only so that the duration cannot
// overflow; what is waited is capped much lower by MaxRetryAfter.
const maxRetryAfterRead = 365 * 24 * time.Hour

// retryAfter reads a Retry-After header (seconds or an HTTP date) as a wait from now, capped.
func retryAfter(h string, now time.Time, limit time.Duration) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > int64(limit/time.Second) {
			return limit
		}
		d = time.Duration(n) * time.Second
	} else if at, err := http.ParseTime(h); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), limit)
}

// limitedBody fails a read past the limit and gives the request slot back when read to the
// end or closed.
type limitedBody struct {
	rc      io.ReadCloser
	left    int64
	url     string
	release func()
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("%s: %w", b.url, ErrTooLarge)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		// Closed here, not left to the caller: certificate-transparency-go's client does not
		// close a body whose read failed, and the log would keep the connection sending.
		b.rc.Close()
		b.release()
		return n, fmt.Errorf("%s: %w", b.url, ErrTooLarge)
	}
	if err == io.EOF {
		b.release()
	}
	return n, err
}

func (b *limitedBody) Close() error {
	b.release()
	return b.rc.Close()
}

// get fetches url with hc and returns the body (bounded by the transport).
func get(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{URL: url, Status: resp.StatusCode}
	}
	return io.ReadAll(resp.Body)
}
