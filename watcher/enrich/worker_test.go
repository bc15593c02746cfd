package enrich

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// storeWithCases saves scored names through the same path the pipeline uses, which also
// queues each new case for enrichment.
func storeWithCases(t testing.TB, names ...string) *store.SQL {
	t.Helper()
	db, err := store.Open(context.Background(), storetest.Where(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sc := ruleSet(t).NewScorer()
	var batch []store.Sighting
	for _, n := range names {
		batch = append(batch, store.Sighting{Result: sc.Score(n), At: time.Now(), Cert: watcher.Certificate{Index: -1}})
	}
	if _, err := db.Save(context.Background(), batch, store.Counts{}); err != nil {
		t.Fatal(err)
	}
	return db
}

// drain works the enrichment jobs once.
func drain(t testing.TB, db *store.SQL, w *Worker, workers int) *queue.Runner {
	t.Helper()
	r := &queue.Runner{Store: db, Drain: true, Log: quiet, Kinds: []queue.Kind{{Name: store.KindEnrich, Handle: w.Handle, Workers: workers,
		Backoff: time.Millisecond, MaxBackoff: time.Millisecond}}}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWorkerEnrichesCasesAndTheScoreFollows(t *testing.T) {
	dnsSrv := enrichtest.StartDNS(t)
	dnsSrv.Add("hp-printer-help.com. 600 IN A 192.0.2.10")
	dnsSrv.Add("hp-printer-help.com. 600 IN NS ns1.example-dns.net.")
	dnsSrv.Add("hp-printer-help.com. 600 IN MX 10 mx.example-dns.net.")
	dnsSrv.Add("www.hp-printer-help.com. 600 IN A 192.0.2.11")
	registry := enrichtest.StartWHOIS(t, func(q string) (string, bool) { return enrichtest.RegistryWhois(q, ""), false })
	db := storeWithCases(t, "hp-printer-help.com", "www.hp-printer-help.com", "canon-printer-setup.com")
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	e := &Enricher{Rules: ruleSet(t), DNS: &Resolver{Servers: []string{dnsSrv.Addr}, Timeout: 200 * time.Millisecond},
		WHOIS: &WHOIS{Server: registry.Addr, Timeout: time.Second, Guard: allowLocal(t, registry.Addr)}, Cache: db, Now: func() time.Time { return now }}
	var seen []string
	var mu sync.Mutex
	w := &Worker{Store: db, Enricher: e, Enriched: func(c *watcher.Case, _ *watcher.Enrichment) {
		mu.Lock()
		seen = append(seen, c.Registrable)
		mu.Unlock()
	}}
	r := drain(t, db, w, 4)
	if n := r.Counters(store.KindEnrich).Done.Load(); n != 2 || len(seen) != 2 {
		t.Fatalf("enriched %d cases (%v), want 2", n, seen)
	}
	c, _, err := db.Case(context.Background(), "hp-printer-help.com")
	if err != nil || c.Enrichment == nil {
		t.Fatal(c, err)
	}
	if c.Enrichment.Registration.Registrar != "Example Registrar, LLC" || len(c.Enrichment.DNS) != 2 {
		t.Fatalf("stored enrichment %+v", c.Enrichment)
	}
	// Both names' addresses; registered 7 days before "now" and accepting mail: both rules fire
	// in the case's score, after the name's reasons.
	if addrs := strings.Join(c.Addresses(), " "); addrs != "192.0.2.10 192.0.2.11" && addrs != "192.0.2.11 192.0.2.10" {
		t.Errorf("addresses %q", addrs)
	}
	last := c.Score.Reasons[len(c.Score.Reasons)-2:]
	if last[0].Rule != rules.RuleRegisteredRecently || last[1].Rule != rules.RuleMailExchanger || len(c.FirstScore.Reasons) >= len(c.Score.Reasons) {
		t.Errorf("case reasons %+v (first %+v)", c.Score.Reasons, c.FirstScore.Reasons)
	}
	// One WHOIS query per registrable domain.
	if n := len(registry.Times()); n != 2 {
		t.Errorf("WHOIS asked %d times for 2 cases", n)
	}
	if n, _ := db.PendingJobs(context.Background(), []string{store.KindEnrich}); n != 0 {
		t.Errorf("%d still queued", n)
	}
}

// A case nothing ever answers for is tried MaxAttempts times, then kept with its unknowns and
// the reasons (the site check waits for it otherwise).
func TestWorkerGivesUpAfterMaxAttempts(t *testing.T) {
	db := storeWithCases(t, "hp-printer-help-offline.com")
	w := &Worker{Store: db, Enricher: &Enricher{Rules: ruleSet(t)}}
	var retried int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := drain(t, db, w, 1)
		retried += r.Counters(store.KindEnrich).Retried.Load()
		if n, _ := db.PendingJobs(context.Background(), []string{store.KindEnrich}); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still queued after %d retries", retried)
		}
	}
	c, _, _ := db.Case(context.Background(), "hp-printer-help-offline.com")
	if c.Enrichment == nil || c.Enrichment.Registration.State != watcher.Unknown || !strings.Contains(c.Enrichment.Registration.Reason, "off") ||
		retried != int64(jobs.Enrich.MaxAttempts-1) {
		t.Errorf("gave up with %+v after %d retries", c.Enrichment, retried)
	}
}

// A registry that asks us to slow down for longer than an attempt may wait makes the job wait
// for it, without spending an attempt.
func TestWorkerWaitsForARateLimitedRegistry(t *testing.T) {
	rdapSrv := enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	boot, _ := parseBootstrap(enrichtest.BootstrapFor(rdapSrv.URL, "com"), "test")
	db := storeWithCases(t, "hp-printer-help.com")
	e := &Enricher{Rules: ruleSet(t), RDAP: &RDAP{Bootstrap: boot, Limits: &Limits{}, Guard: allowLocal(t, rdapSrv.Listener.Addr().String())}}
	r := drain(t, db, &Worker{Store: db, Enricher: e}, 1)
	if r.Counters(store.KindEnrich).Retried.Load() != 1 {
		t.Fatalf("retried %d", r.Counters(store.KindEnrich).Retried.Load())
	}
	st, _ := db.JobStats(context.Background(), time.Now())
	if st[0].Scheduled != 1 {
		t.Fatalf("the job is not waiting for the registry: %+v", st[0])
	}
	jobs, _ := db.ClaimJobs(context.Background(), "w", []string{store.KindEnrich}, 1, time.Now().Add(61*time.Minute), time.Minute, false)
	if len(jobs) != 1 || jobs[0].Attempt != 1 || !strings.Contains(jobs[0].LastError, "rate limited") {
		t.Errorf("after the pause: %+v", jobs)
	}
}

// BenchmarkEnrich1000 enriches 1,000 cases against local DNS and RDAP servers with rate limits
// off, through the job queue.
func BenchmarkEnrich1000(b *testing.B) {
	dnsSrv := enrichtest.StartDNS(b)
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("hp-printer-help-%d.com", i)
		dnsSrv.Add(names[i] + ". 600 IN A 192.0.2.10")
		dnsSrv.Add(names[i] + ". 600 IN NS ns1.example-dns.net.")
	}
	rdapSrv := enrichtest.StartRDAP(b, func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		fmt.Fprint(w, enrichtest.RegistryDomain(name, "", "2026-11-20T09:00:00Z"))
	})
	boot, _ := parseBootstrap(enrichtest.BootstrapFor(rdapSrv.URL, "com"), "bench")
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db := storeWithCases(b, names...)
		e := &Enricher{Rules: ruleSet(b), DNS: &Resolver{Servers: []string{dnsSrv.Addr}, Timeout: time.Second},
			RDAP: &RDAP{Bootstrap: boot, Limits: &Limits{}, Guard: allowLocal(b, rdapSrv.Listener.Addr().String())}, Cache: db}
		b.StartTimer()
		start := time.Now()
		r := drain(b, db, &Worker{Store: db, Enricher: e}, 32)
		if n := r.Counters(store.KindEnrich).Done.Load(); n != 1000 {
			b.Fatalf("enriched %d", n)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/1000-cases")
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	}
}
