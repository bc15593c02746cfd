package enrich

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// storeWithFindings saves scored findings through the same path the pipeline uses, which also
// queues them for enrichment.
func storeWithFindings(t testing.TB, names ...string) *store.SQLite {
	t.Helper()
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "h.db"))
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

func TestQueueEnrichesAndRevises(t *testing.T) {
	dnsSrv := enrichtest.StartDNS(t)
	dnsSrv.Add("hp-printer-help.com. 600 IN A 192.0.2.10")
	dnsSrv.Add("hp-printer-help.com. 600 IN NS ns1.example-dns.net.")
	dnsSrv.Add("hp-printer-help.com. 600 IN MX 10 mx.example-dns.net.")
	registry := enrichtest.StartWHOIS(t, func(q string) (string, bool) { return enrichtest.RegistryWhois(q, ""), false })
	db := storeWithFindings(t, "hp-printer-help.com", "www.hp-printer-help.com", "canon-printer-setup.com")
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	e := &Enricher{Rules: ruleSet(t), DNS: &Resolver{Servers: []string{dnsSrv.Addr}, Timeout: 200 * time.Millisecond},
		WHOIS: &WHOIS{Server: registry.Addr, Timeout: time.Second, Guard: allowLocal(t, registry.Addr)}, Cache: db, Now: func() time.Time { return now }}
	stats := &watcher.Stats{}
	var seen []string
	var mu sync.Mutex
	q := &Queue{Store: db, Enricher: e, Drain: true, Stats: stats, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Enriched: func(f *watcher.Finding) { mu.Lock(); seen = append(seen, f.Domain); mu.Unlock() }}
	if err := q.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if stats.Enriched.Load() != 3 || len(seen) != 3 {
		t.Fatalf("enriched %d (%v)", stats.Enriched.Load(), seen)
	}
	fs, err := db.Findings(context.Background(), store.Query{Name: "hp-printer-help.com"})
	if err != nil || len(fs) != 1 {
		t.Fatal(fs, err)
	}
	f := fs[0]
	if f.Enrichment == nil || f.Revised == nil || f.Enrichment.Registration.Registrar != "Example Registrar, LLC" ||
		len(f.Enrichment.DNS.A) != 1 {
		t.Fatalf("stored enrichment %+v", f.Enrichment)
	}
	// Registered 7 days before "now" and accepting mail: both rules fire; the first score stays.
	last := f.Revised.Reasons[len(f.Revised.Reasons)-2:]
	if last[0].Rule != "registered-recently" || last[1].Rule != "mail-exchanger" || f.Score == 0 || len(f.Reasons) >= len(f.Revised.Reasons) {
		t.Errorf("revised reasons %+v (first score %d)", f.Revised.Reasons, f.Score)
	}
	// One WHOIS query for the two names under hp-printer-help.com (cached in the store).
	if n := len(registry.Times()); n != 2 {
		t.Errorf("WHOIS asked %d times for 2 registrable domains", n)
	}
	if n, _ := db.PendingEnrichment(context.Background()); n != 0 {
		t.Errorf("%d still queued", n)
	}
}

func TestQueueLosesNothingOnStopOrCrash(t *testing.T) {
	db := storeWithFindings(t, "epson-printer-help.com", "brother-printer-setup.com")
	ctx := context.Background()
	// A crash: claimed, never finished. After the lease it is handed out again.
	claimed, err := db.ClaimEnrichment(ctx, 10, time.Now(), 50*time.Millisecond)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claimed %d, %v", len(claimed), err)
	}
	if again, _ := db.ClaimEnrichment(ctx, 10, time.Now(), time.Minute); len(again) != 0 {
		t.Fatalf("claimed findings handed out twice: %d", len(again))
	}
	time.Sleep(60 * time.Millisecond)
	again, _ := db.ClaimEnrichment(ctx, 10, time.Now(), time.Millisecond)
	if len(again) != 2 {
		t.Fatalf("after the lease %d findings came back, want 2", len(again))
	}
	time.Sleep(5 * time.Millisecond)

	// A stop: lookups in flight are put back, due at once.
	silent := enrichtest.StartDNS(t)
	silent.Configure(func(s *enrichtest.DNSServer) { s.Silent["epson-printer-help.com."] = true })
	silent.Configure(func(s *enrichtest.DNSServer) { s.Silent["brother-printer-setup.com."] = true })
	e := &Enricher{Rules: ruleSet(t), DNS: &Resolver{Servers: []string{silent.Addr}, Timeout: 5 * time.Second}}
	stop, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	stats := &watcher.Stats{}
	go func() {
		done <- (&Queue{Store: db, Enricher: e, Stats: stats, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Run(stop)
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("queue did not stop")
	}
	if n, _ := db.PendingEnrichment(ctx); n != 2 {
		t.Errorf("%d queued after the stop, want 2", n)
	}
	due, _ := db.ClaimEnrichment(ctx, 10, time.Now(), time.Minute)
	if len(due) != 2 {
		t.Errorf("%d due at once after the stop, want 2", len(due))
	}
}

// BenchmarkEnrich1000 enriches 1,000 findings against local DNS, RDAP and WHOIS servers with
// rate limits off, through the store's queue.
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
		db := storeWithFindings(b, names...)
		e := &Enricher{Rules: ruleSet(b), DNS: &Resolver{Servers: []string{dnsSrv.Addr}, Timeout: time.Second},
			RDAP: &RDAP{Bootstrap: boot, Limits: &Limits{}, Guard: allowLocal(b, rdapSrv.Listener.Addr().String())}, Cache: db}
		stats := &watcher.Stats{}
		b.StartTimer()
		start := time.Now()
		q := &Queue{Store: db, Enricher: e, Drain: true, Workers: 32, Stats: stats, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if err := q.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		if stats.Enriched.Load() != 1000 {
			b.Fatalf("enriched %d", stats.Enriched.Load())
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/1000-findings")
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	}
}

// A finding nothing ever answers for is tried MaxEnrichAttempts times, then kept with its
// unknowns and the reasons, and leaves the queue (the site check waits for it otherwise).
func TestQueueGivesUpAfterMaxAttempts(t *testing.T) {
	db := storeWithFindings(t, "hp-printer-help-offline.com")
	stats := &watcher.Stats{}
	// The lease outlasts a lookup: a lease shorter than the work hands the same item out twice.
	q := &Queue{Store: db, Enricher: &Enricher{Rules: ruleSet(t)}, Drain: true, Retry: time.Millisecond, Lease: time.Minute,
		Stats: stats, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for i := 0; i < 20; i++ {
		if n, _ := db.PendingEnrichment(context.Background()); n == 0 {
			break
		}
		time.Sleep(2 * time.Millisecond)
		if err := q.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := db.PendingEnrichment(context.Background()); n != 0 {
		t.Fatalf("still queued after %d retries", stats.EnrichLate.Load())
	}
	fs, _ := db.Findings(context.Background(), store.Query{Name: "hp-printer-help-offline.com"})
	en := fs[0].Enrichment
	if en == nil || en.Registration.State != watcher.Unknown || !strings.Contains(en.Registration.Reason, "off") ||
		stats.EnrichLate.Load() != store.MaxEnrichAttempts-1 {
		t.Errorf("gave up with %+v after %d retries", en, stats.EnrichLate.Load())
	}
}
