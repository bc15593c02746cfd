package queue

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher/testkit"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestMain lets a test run a worker in a child process (to kill it with SIGKILL).
func TestMain(m *testing.M) {
	if db := os.Getenv("HELPWATCH_QUEUE_CHILD"); db != "" {
		os.Exit(childWorker(db))
	}
	os.Exit(m.Run())
}

func newStore(t testing.TB, path string, cases int) *store.SQL {
	t.Helper()
	if path == "" {
		path = storetest.Where(t)
	}
	s, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	rs, _ := rules.Default()
	sc := rs.NewScorer()
	var batch []store.Sighting
	for i := 0; i < cases; i++ {
		batch = append(batch, store.Sighting{Result: sc.Score(fmt.Sprintf("hp-printer-help-%d.com", i)), At: time.Now(),
			Cert: watcher.Certificate{Index: -1}})
	}
	if cases > 0 {
		if _, err := s.Save(context.Background(), batch, store.Counts{}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// complete is a handler that stores an empty enrichment: the job is done.
func complete(s *store.SQL) Handler {
	return func(ctx context.Context, job *store.Job) error {
		return s.SaveEnrichment(ctx, job, &watcher.Enrichment{Registrable: job.Registrable, At: time.Now()})
	}
}

var waitFor = testkit.WaitFor

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// claimCounter counts a runner's claims, so a test knows the runner looked after a change.
type claimCounter struct {
	store.JobStore
	n atomic.Int64
}

func (c *claimCounter) ClaimJobs(ctx context.Context, w string, kinds []string, n int, now time.Time, lease time.Duration, after bool) ([]store.Job, error) {
	jobs, err := c.JobStore.ClaimJobs(ctx, w, kinds, n, now, lease, after)
	c.n.Add(1)
	return jobs, err
}

// A job that waits (a rate limit) for many leases keeps its lease while its worker lives: the
// clock moves six leases in half-lease steps, each step the heartbeat renews the lease and a
// second runner looks for work, and the job is never taken from its worker; it is done once.
func TestLeaseExtendedWhileAJobWaits(t *testing.T) {
	s := newStore(t, "", 1)
	var runs atomic.Int64
	release := make(chan struct{})
	slow := func(ctx context.Context, job *store.Job) error {
		runs.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return s.SaveEnrichment(ctx, job, &watcher.Enrichment{Registrable: job.Registrable})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := &fakeClock{t: time.Now()}
	lease := time.Minute
	secondStore := &claimCounter{JobStore: s}
	kinds := []Kind{{Name: store.KindEnrich, Handle: slow, Timeout: time.Hour}}
	first := &Runner{Store: s, Lease: lease, HeartbeatEvery: 5 * time.Millisecond, Poll: 5 * time.Millisecond, Now: clock.Now, Log: quiet, Kinds: kinds}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); first.Run(ctx) }()
	waitFor(t, "the job to start", 10*time.Second, func() bool { return runs.Load() == 1 })
	second := &Runner{Store: secondStore, Lease: lease, HeartbeatEvery: 5 * time.Millisecond, Poll: 5 * time.Millisecond, Now: clock.Now, Log: quiet, Kinds: kinds}
	wg.Add(1)
	go func() { defer wg.Done(); second.Run(ctx) }()
	leaseUntil := func() int64 {
		var ms int64
		s.DB().QueryRow(`SELECT lease_until FROM jobs WHERE kind = 'enrich'`).Scan(&ms)
		return ms
	}
	for step := 0; step < 12; step++ {
		clock.Advance(lease / 2)
		want := clock.Now().Add(lease).UnixMilli()
		waitFor(t, "the heartbeat to renew the lease", 10*time.Second, func() bool { return leaseUntil() >= want })
		claims := secondStore.n.Load()
		waitFor(t, "the second runner to look for work", 10*time.Second, func() bool { return secondStore.n.Load() >= claims+2 })
		if runs.Load() != 1 {
			t.Fatalf("after %v the job ran %d times while it waited", time.Duration(step+1)*lease/2, runs.Load())
		}
	}
	close(release)
	waitFor(t, "the job to be done", 10*time.Second, func() bool {
		st, _ := s.JobStats(context.Background(), clock.Now())
		return st[0].Done == 1
	})
	cancel()
	wg.Wait()
	if runs.Load() != 1 {
		t.Errorf("ran %d times", runs.Load())
	}
}

// A handler that panics fails its attempt (recorded with where it happened); the process
// goes on, and the job is retried.
func TestHandlerPanicFailsTheAttempt(t *testing.T) {
	s := newStore(t, "", 1)
	var calls atomic.Int64
	h := func(ctx context.Context, job *store.Job) error {
		if calls.Add(1) == 1 {
			var m map[string]int
			m["boom"]++ // a nil-map write: a real panic
		}
		return s.SaveEnrichment(ctx, job, &watcher.Enrichment{Registrable: job.Registrable})
	}
	r := &Runner{Store: s, Drain: true, Log: quiet, Kinds: []Kind{{Name: store.KindEnrich, Handle: h, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}}}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := r.Counters(store.KindEnrich)
	if c.Panicked.Load() != 1 || c.Retried.Load() != 1 {
		t.Fatalf("panicked %d, retried %d", c.Panicked.Load(), c.Retried.Load())
	}
	// The first drain may end before the retry is due; later drains do it.
	waitFor(t, "the retry", 5*time.Second, func() bool {
		r2 := &Runner{Store: s, Drain: true, Log: quiet, Kinds: []Kind{{Name: store.KindEnrich, Handle: h}}}
		if err := r2.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, _ := s.JobStats(context.Background(), time.Now())
		return st[0].Done == 1
	})
	if calls.Load() != 2 {
		t.Errorf("calls %d, want 2", calls.Load())
	}
}

// childWorker claims jobs in a child process and holds them forever (until SIGKILL).
func childWorker(db string) int {
	s, err := store.Open(context.Background(), db)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	hold := func(ctx context.Context, job *store.Job) error { <-ctx.Done(); return ctx.Err() }
	r := &Runner{Store: s, Lease: time.Hour, Log: quiet, Kinds: []Kind{{Name: store.KindEnrich, Handle: hold, Workers: 4}}}
	r.Run(context.Background())
	return 0
}

// A process killed with jobs claimed (kill -9: no cleanup at all) leaves them to the next
// process at once, not after its one-hour lease.
func TestKilledProcessJobsAreTakenAtOnce(t *testing.T) {
	path := storetest.Where(t)
	s := newStore(t, path, 6)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "HELPWATCH_QUEUE_CHILD="+path)
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	waitFor(t, "the child to claim 4 jobs", 20*time.Second, func() bool {
		st, _ := s.JobStats(context.Background(), time.Now())
		return st[0].Running == 4
	})
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	start := time.Now()
	r := &Runner{Store: s, Drain: true, Lease: time.Hour, Log: quiet, Kinds: []Kind{{Name: store.KindEnrich, Handle: complete(s), Workers: 8}}}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, _ := s.JobStats(context.Background(), time.Now())
	if st[0].Done != 6 || st[0].Running != 0 {
		t.Fatalf("after the takeover: %+v (in %s)", st[0], time.Since(start))
	}
}

// Many workers on many cases: every job is done exactly once.
func TestNoJobDoneTwiceUnderSixteenWorkers(t *testing.T) {
	s := newStore(t, "", 300)
	var mu sync.Mutex
	seen := map[int64]int{}
	h := func(ctx context.Context, job *store.Job) error {
		mu.Lock()
		seen[job.ID]++
		mu.Unlock()
		return s.SaveEnrichment(ctx, job, &watcher.Enrichment{Registrable: job.Registrable})
	}
	var wg sync.WaitGroup
	var errs []string
	var emu sync.Mutex
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &Runner{Store: s, Drain: true, Poll: 5 * time.Millisecond, Log: quiet, Kinds: []Kind{{Name: store.KindEnrich, Handle: h, Workers: 4}}}
			if err := r.Run(context.Background()); err != nil {
				emu.Lock()
				errs = append(errs, err.Error())
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(strings.Join(errs, "\n"))
	}
	if len(seen) != 300 {
		t.Errorf("%d jobs done, want 300", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("job %d done %d times", id, n)
		}
	}
	st, _ := s.JobStats(context.Background(), time.Now())
	if st[0].Done != 300 {
		t.Errorf("stats %+v", st[0])
	}
}

// A stop gives the jobs in flight back at once, their attempt uncounted.
func TestStopGivesJobsBackAtOnce(t *testing.T) {
	s := newStore(t, "", 3)
	started := make(chan struct{}, 3)
	hold := func(ctx context.Context, job *store.Job) error {
		started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runner{Store: s, Lease: time.Hour, Log: quiet, Kinds: []Kind{{Name: store.KindEnrich, Handle: hold}}}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for i := 0; i < 3; i++ {
		<-started
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	jobs, err := s.ClaimJobs(context.Background(), "next", []string{store.KindEnrich}, 10, time.Now(), time.Minute, false)
	if err != nil || len(jobs) != 3 || jobs[0].Attempt != 1 {
		t.Fatalf("after the stop: %+v %v", jobs, err)
	}
}

// BenchmarkNoopJobs works 2,000 no-op jobs (each completed in the store) with 16 workers on
// SQLite: the queue's own cost per job.
func BenchmarkNoopJobs(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := newStore(b, "", 2000)
		b.StartTimer()
		start := time.Now()
		r := &Runner{Store: s, Drain: true, Log: quiet, Kinds: []Kind{{Name: store.KindEnrich, Handle: complete(s), Workers: 16}}}
		if err := r.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		if n := r.Counters(store.KindEnrich).Done.Load(); n != 2000 {
			b.Fatalf("done %d", n)
		}
		b.ReportMetric(2000/time.Since(start).Seconds(), "jobs/s")
	}
}

// BenchmarkNoopJobsPostgres3Workers is three workers (three Runners, each with its own
// connection pool, as three processes would have) draining 6,000 no-op jobs from PostgreSQL
// (skipped without one; HELPWATCH_TEST_PG).
func BenchmarkNoopJobsPostgres3Workers(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dsn := storetest.Schema(b)
		seed := newStore(b, dsn, 6000)
		var runners []*Runner
		var stores []*store.SQL
		for range 3 {
			s, err := store.Open(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			stores = append(stores, s)
			runners = append(runners, &Runner{Store: s, Drain: true, Log: quiet, Kinds: []Kind{{Name: store.KindEnrich, Handle: complete(s), Workers: 16}}})
		}
		b.StartTimer()
		start := time.Now()
		errs := make(chan error, len(runners))
		for _, r := range runners {
			go func() { errs <- r.Run(context.Background()) }()
		}
		for range runners {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		done := int64(0)
		for _, r := range runners {
			done += r.Counters(store.KindEnrich).Done.Load()
		}
		st, _ := seed.JobStats(context.Background(), time.Now())
		if done != 6000 || st[0].Done != 6000 {
			b.Fatalf("done %d (store says %+v)", done, st)
		}
		b.ReportMetric(6000/elapsed.Seconds(), "jobs/s")
		// Every iteration's pools closed before the next opens its own: the server's
		// connection limit is shared by all of them.
		for _, s := range stores {
			s.Close()
		}
		seed.Close()
		b.StartTimer()
	}
}

// A deadlock the database broke (or a connection it closed) is retried at once and does not
// spend one of the job's attempts.
func TestTransientStoreErrorsSpendNoAttempt(t *testing.T) {
	s := newStore(t, "", 1)
	var calls atomic.Int64
	h := func(ctx context.Context, job *store.Job) error {
		if calls.Add(1) <= 3 {
			return fmt.Errorf("reading the case: %w", &pgconn.PgError{Code: "40P01", Message: "deadlock detected"})
		}
		return s.SaveEnrichment(ctx, job, &watcher.Enrichment{Registrable: job.Registrable})
	}
	clock := time.Now()
	var cmu sync.Mutex
	now := func() time.Time { cmu.Lock(); defer cmu.Unlock(); return clock }
	// The kind's backoff is an hour: only the transient path can bring the job back soon.
	kind := Kind{Name: store.KindEnrich, Handle: h, Backoff: time.Hour, MaxBackoff: time.Hour}
	for i := 0; i < 10 && calls.Load() < 4; i++ {
		r := &Runner{Store: s, Drain: true, Log: quiet, Now: now, Kinds: []Kind{kind}}
		if err := r.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		cmu.Lock()
		clock = clock.Add(3 * time.Second)
		cmu.Unlock()
	}
	st, _ := s.JobStats(context.Background(), now())
	if calls.Load() != 4 || st[0].Done != 1 {
		t.Fatalf("calls %d, done %d: a deadlock waited for the backoff", calls.Load(), st[0].Done)
	}
	var attempts int
	if err := s.DB().QueryRow(`SELECT attempts FROM jobs WHERE kind = 'enrich'`).Scan(&attempts); err != nil || attempts != 1 {
		t.Errorf("the job spent %d attempts (%v), want 1", attempts, err)
	}
	if !store.IsTransient(&pgconn.PgError{Code: "57P01"}) || store.IsTransient(fmt.Errorf("no such host")) {
		t.Error("IsTransient")
	}
}
