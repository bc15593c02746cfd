package sweep

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Candidates that exist (delegated, or only resolving) are found; the rest are remembered and
// asked again after the recheck, so a name registered a day later is found by the next sweep;
// a name that got no answer is asked again in an hour.
func TestSweepFindsAndRechecks(t *testing.T) {
	dnsSrv := enrichtest.StartDNS(t)
	dnsSrv.Add("canonprintersupport.com. 300 IN NS ns1.parking.example.")
	dnsSrv.Add("can0n.com. 300 IN A 192.0.2.7")
	dnsSrv.Configure(func(s *enrichtest.DNSServer) { s.ServFail["cnaon.com."] = true })
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mu sync.Mutex
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cands := []rules.LookAlike{{Domain: "canonprintersupport.com", Brand: "Canon", Kind: rules.LookHelpline}, {Domain: "can0n.com", Brand: "Canon", Kind: rules.LookHomoglyph},
		{Domain: "canonprinterhelp.online", Brand: "Canon", Kind: rules.LookHelpline}, {Domain: "cnaon.com", Brand: "Canon", Kind: rules.LookTransposition}}
	cfg := Config{Store: db, Resolver: &enrich.Resolver{Servers: []string{dnsSrv.Addr}, Timeout: time.Second, Retries: 0}, Rate: 1000, Now: clock}
	found := func(r *Result) []string {
		var out []string
		for _, f := range r.Found {
			out = append(out, f.Domain)
		}
		slices.Sort(out)
		return out
	}
	res, err := Run(context.Background(), cfg, cands)
	if err != nil {
		t.Fatal(err)
	}
	if got := found(res); !slices.Equal(got, []string{"can0n.com", "canonprintersupport.com"}) || res.Added != 4 || res.Absent != 1 || res.Unknown != 1 {
		t.Fatalf("first sweep: found %v, %+v", got, res)
	}
	// Two hours later: only the unanswered name is due.
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	dnsSrv.Add("canonprinterhelp.online. 300 IN NS ns1.example.")
	res, _ = Run(context.Background(), cfg, cands)
	if res.Asked != 1 || res.Added != 0 {
		t.Errorf("two hours later: asked %d (want the unanswered one), added %d", res.Asked, res.Added)
	}
	// A day later the absent one is asked again and is registered now.
	mu.Lock()
	now = now.Add(23 * time.Hour)
	mu.Unlock()
	cfg.Resolver = &enrich.Resolver{Servers: []string{dnsSrv.Addr}, Timeout: time.Second} // a new sweep: no cached answers
	res, _ = Run(context.Background(), cfg, cands)
	if got := found(res); !slices.Equal(got, []string{"canonprinterhelp.online"}) {
		t.Errorf("a day later: found %v", got)
	}
	if n := dnsSrv.Count("NS", "canonprintersupport.com"); n != 1 {
		t.Errorf("an existing name was asked about %d times", n)
	}
}
