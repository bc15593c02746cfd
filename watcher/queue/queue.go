// Package queue runs the store's jobs: enrichment, site checks and their re-checks, with one
// set of rules for all of them. A Runner registers its process as a worker, claims due jobs
// with a lease, renews the leases while it lives (so a job may wait on a rate limit for longer
// than one lease), gives each attempt a deadline, retries failures with exponential backoff up
// to the kind's attempts, turns a handler's panic into a failed attempt, and on stop gives the
// jobs in flight back at once. Another process takes the jobs of a worker that died: at once on
// the same host, after the lease elsewhere.
package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Handler does one job. It returns nil once the job's outcome is stored (the store completes
// the job in the same transaction as the facts), a *Retry to try again at a given time, or
// any other error to try again after the kind's backoff. The job's Attempt and MaxAttempts say
// whether this is the last try.
type Handler func(ctx context.Context, job *store.Job) error

// Retry asks for another try. At zero means after the kind's backoff; NoAttempt leaves the
// attempt uncounted (a server's rate-limit pause is a wait, not a failure).
type Retry struct {
	At        time.Time
	Reason    string
	NoAttempt bool
}

func (r *Retry) Error() string { return r.Reason }

// Kind is one kind of job and how it is run.
type Kind struct {
	Name    string
	Handle  Handler
	Workers int           // concurrent jobs (default 4)
	Timeout time.Duration // one attempt's deadline (default 5 min)
	// Backoff is the wait before the first retry (default 1 min); it doubles with every
	// attempt, with ±20% jitter, up to MaxBackoff (default 6 h).
	Backoff, MaxBackoff time.Duration
}

// KindOf is the runner's kind for a registered job kind: its name, deadline and backoff from
// spec, handled by h with workers concurrent jobs (0: the spec's default).
func KindOf(spec jobs.Spec, h Handler, workers int) Kind {
	if workers <= 0 {
		workers = spec.Workers
	}
	return Kind{Name: spec.Name, Handle: h, Workers: workers, Timeout: spec.Timeout, Backoff: spec.Backoff, MaxBackoff: spec.MaxBackoff}
}

// Counters are a runner's totals per kind, safe for concurrent reading.
type Counters struct {
	Done, Failed, Retried, Released, Panicked, LeaseLost atomic.Int64
}

// Runner works the jobs of its kinds until its context ends (or, with Drain, until nothing it
// can take is left).
type Runner struct {
	Store store.JobStore
	Kinds []Kind
	// Lease is how long a claimed job is held without a heartbeat (default 2 min); the runner
	// renews it every Lease/3 while it runs.
	Lease time.Duration
	Poll  time.Duration // how often an empty queue is looked at again (default 1 s)
	// After makes a job wait while its case has a pending job of its after-kind (the site
	// check waits for the enrichment). Leave it off when that kind is not worked at all.
	After bool
	// Drain returns once nothing this runner could take is due (a one-off run); otherwise Run
	// waits for new jobs until ctx ends.
	Drain    bool
	Log      *slog.Logger
	WorkerID string // default: host, pid and a random suffix
	// HeartbeatEvery is how often the leases are renewed (default Lease/3).
	HeartbeatEvery time.Duration
	// Now is the clock of claims, leases and retries (default time.Now; tests move it).
	Now func() time.Time

	mu       sync.Mutex
	counters map[string]*Counters
}

// Counters returns the runner's totals for a kind (created on first use).
func (r *Runner) Counters(kind string) *Counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counters == nil {
		r.counters = map[string]*Counters{}
	}
	c := r.counters[kind]
	if c == nil {
		c = &Counters{}
		r.counters[kind] = c
	}
	return c
}

func (r *Runner) defaults() {
	if r.Lease <= 0 {
		r.Lease = 2 * time.Minute
	}
	if r.Poll <= 0 {
		r.Poll = time.Second
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.HeartbeatEvery <= 0 {
		r.HeartbeatEvery = r.Lease / 3
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.WorkerID == "" {
		var b [4]byte
		rand.Read(b[:])
		r.WorkerID = fmt.Sprintf("%s/%d/%s", store.HostName(), os.Getpid(), hex.EncodeToString(b[:]))
	}
	for i := range r.Kinds {
		k := &r.Kinds[i]
		if k.Workers <= 0 {
			k.Workers = 4
		}
		if k.Timeout <= 0 {
			k.Timeout = 5 * time.Minute
		}
		if k.Backoff <= 0 {
			k.Backoff = time.Minute
		}
		if k.MaxBackoff <= 0 {
			k.MaxBackoff = 6 * time.Hour
		}
	}
}

// Run works jobs until ctx ends (or, with Drain, until nothing is left it can take). Jobs in
// flight when ctx ends are given back at once, their attempt uncounted. Errors are the store's,
// when it stays unusable.
func (r *Runner) Run(ctx context.Context) error {
	r.defaults()
	if len(r.Kinds) == 0 {
		return errors.New("queue: no job kinds to run")
	}
	// Store calls outlive ctx where they must: a stopping runner still gives its jobs back.
	bg := context.WithoutCancel(ctx)
	pid := os.Getpid()
	if err := r.Store.RegisterWorker(ctx, store.Worker{ID: r.WorkerID, Host: store.HostName(), PID: pid,
		PIDStart: store.ProcessStart(pid), Started: r.Now()}); err != nil {
		return fmt.Errorf("registering the worker: %w", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(bg, 10*time.Second)
		defer cancel()
		if err := r.Store.UnregisterWorker(uctx, r.WorkerID); err != nil {
			r.Log.Error("could not give the jobs back", "worker", r.WorkerID, "err", err)
		}
	}()

	heartbeatDone := make(chan struct{})
	hbCtx, stopHeartbeat := context.WithCancel(bg)
	go func() {
		defer close(heartbeatDone)
		t := time.NewTicker(r.HeartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				if err := r.Store.Heartbeat(hbCtx, r.WorkerID, r.Now(), r.Lease); err != nil && hbCtx.Err() == nil {
					r.Log.Warn("renewing the job leases failed", "err", err)
				}
			}
		}
	}()
	defer func() { stopHeartbeat(); <-heartbeatDone }()

	slots := map[string]chan struct{}{}
	handlers := map[string]*Kind{}
	var names []string
	for i := range r.Kinds {
		k := &r.Kinds[i]
		slots[k.Name] = make(chan struct{}, k.Workers)
		handlers[k.Name] = k
		names = append(names, k.Name)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var inFlight atomic.Int64
	freed := make(chan struct{}, 1)
	var lastErr time.Time
	lastClaim := map[string]time.Time{}
	for {
		if ctx.Err() != nil {
			return nil
		}
		claimed, failedClaims, deferred := 0, 0, false
		for _, name := range names {
			free := cap(slots[name]) - len(slots[name])
			if free == 0 {
				continue
			}
			// A claim is a transaction of its own: taking one job each time one ends would
			// cost a claim per job. While most of the kind's slots are busy, a free slot
			// waits up to claimGap so that a few are filled by one claim.
			if free < max(1, cap(slots[name])/2) && time.Since(lastClaim[name]) < claimGap {
				deferred = true
				continue
			}
			lastClaim[name] = time.Now()
			jobs, err := r.Store.ClaimJobs(ctx, r.WorkerID, []string{name}, free, r.Now(), r.Lease, r.After)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				failedClaims++
				if time.Since(lastErr) > 30*time.Second {
					lastErr = time.Now()
					r.Log.Error("reading the job queue failed; retrying", "err", err)
				}
				continue
			}
			for i := range jobs {
				job := jobs[i]
				slots[name] <- struct{}{}
				inFlight.Add(1)
				claimed++
				wg.Add(1)
				go func(k *Kind) {
					defer func() {
						<-slots[k.Name]
						inFlight.Add(-1)
						wg.Done()
						select {
						case freed <- struct{}{}:
						default:
						}
					}()
					r.work(ctx, bg, k, &job)
				}(handlers[name])
			}
		}
		if claimed > 0 {
			continue
		}
		if r.Drain && inFlight.Load() == 0 && failedClaims == 0 {
			return nil
		}
		wait := r.Poll
		if deferred {
			wait = min(wait, claimGap)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-freed:
		}
		t.Stop()
	}
}

// claimGap is the longest a free slot waits for others to free up before it is filled alone.
const claimGap = 10 * time.Millisecond

// work runs one attempt and records its outcome.
func (r *Runner) work(ctx, bg context.Context, k *Kind, job *store.Job) {
	c := r.Counters(k.Name)
	attemptCtx, cancel := context.WithTimeout(ctx, k.Timeout)
	err := safeHandle(attemptCtx, k.Handle, job)
	timedOut := attemptCtx.Err() == context.DeadlineExceeded && ctx.Err() == nil
	cancel()
	rctx, rcancel := context.WithTimeout(bg, 30*time.Second)
	defer rcancel()
	var panicked *panicError
	switch {
	case err == nil:
		c.Done.Add(1)
		return
	case errors.Is(err, store.ErrLeaseLost):
		c.LeaseLost.Add(1)
		r.Log.Warn("another worker took the job while it ran; its result counts", "kind", k.Name, "case", job.Registrable)
		return
	case ctx.Err() != nil:
		// Stopping: the job goes back at once, its attempt uncounted.
		c.Released.Add(1)
		if err := r.Store.ReleaseJob(rctx, job); err != nil && !errors.Is(err, store.ErrLeaseLost) {
			r.Log.Error("could not give a job back", "kind", k.Name, "case", job.Registrable, "err", err)
		}
		return
	case errors.As(err, &panicked):
		c.Panicked.Add(1)
		r.Log.Error("a job's handler panicked; the attempt counts as failed", "kind", k.Name, "case", job.Registrable, "panic", panicked.value,
			"at", panicked.where)
	case timedOut:
		err = fmt.Errorf("did not finish within %s: %w", k.Timeout, err)
	}
	at := r.Now().Add(backoff(k, job.Attempt))
	count := true
	var retry *Retry
	if errors.As(err, &retry) {
		if !retry.At.IsZero() {
			at = retry.At
		}
		count = !retry.NoAttempt
	} else if store.IsTransient(err) {
		// A deadlock broken by the database, or a connection it closed: nothing is wrong with
		// the job; again in a moment, the attempt not spent.
		at, count = r.Now().Add(time.Second+time.Duration(mrand.Int64N(int64(time.Second)))), false
	}
	failed, serr := r.Store.RetryJob(rctx, job, at, truncate(err.Error(), 2000), count)
	switch {
	case serr != nil:
		if !errors.Is(serr, store.ErrLeaseLost) {
			r.Log.Error("could not record a job's failure", "kind", k.Name, "case", job.Registrable, "err", serr)
		}
	case failed:
		c.Failed.Add(1)
		r.Log.Warn("job failed for good", "kind", k.Name, "case", job.Registrable, "attempts", job.Attempt, "err", err)
	default:
		c.Retried.Add(1)
	}
}

// backoff is the wait before the next try after attempt n (1-based): Backoff doubling, with
// ±20% jitter so retries of many jobs spread out, capped at MaxBackoff.
func backoff(k *Kind, attempt int) time.Duration {
	d := float64(k.Backoff) * math.Pow(2, float64(max(attempt-1, 0)))
	d = min(d, float64(k.MaxBackoff))
	d *= 0.8 + 0.4*mrand.Float64()
	return time.Duration(d)
}

type panicError struct {
	value any
	where string
}

func (p *panicError) Error() string { return fmt.Sprintf("panicked: %v (at %s)", p.value, p.where) }

// safeHandle runs the handler; a panic in it becomes an error naming where it happened.
func safeHandle(ctx context.Context, h Handler, job *store.Job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, where: panicSite(debug.Stack())}
		}
	}()
	return h(ctx, job)
}

// panicSite picks the first frame of a stack that is not the runtime's or this package's.
func panicSite(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	for i := 0; i+1 < len(lines); i++ {
		fn := strings.TrimSpace(lines[i])
		if strings.HasPrefix(fn, "runtime/") || strings.HasPrefix(fn, "panic(") || strings.Contains(fn, "/watcher/queue.") ||
			strings.HasPrefix(fn, "goroutine ") || strings.HasPrefix(fn, "runtime.") || fn == "" || strings.HasPrefix(fn, "/") {
			continue
		}
		return fn + " " + strings.TrimSpace(lines[i+1])
	}
	return "unknown"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
