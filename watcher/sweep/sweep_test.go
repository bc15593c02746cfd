package sweep

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
	"github.com/helpwatch/helpwatch/watcher/netguard"
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

// A name registered but not delegated (no DNS at all) is found by asking the registry's RDAP;
// RDAP's 404 confirms an absent name; the registry is asked about at most RegistryMax names.
func TestSweepAsksTheRegistryAboutWhatDNSDoesNotKnow(t *testing.T) {
	dnsSrv := enrichtest.StartDNS(t)
	dnsSrv.Add("epsonprintersupport.com. 300 IN NS ns1.example.")
	rdapSrv := enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		if name == "epsonprinterhelp.com" {
			fmt.Fprint(w, enrichtest.RegistryDomain(name, "", "2026-12-04T10:00:00Z"))
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	bootFile := filepath.Join(t.TempDir(), "dns.json")
	if err := os.WriteFile(bootFile, enrichtest.BootstrapFor(rdapSrv.URL, "com"), 0o600); err != nil {
		t.Fatal(err)
	}
	guard := &netguard.Guard{}
	if err := guard.AllowHost(rdapSrv.Listener.Addr().String()); err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cands := []rules.LookAlike{{Domain: "epsonprintersupport.com", Brand: "Epson", Kind: rules.LookHelpline},
		{Domain: "epsonprinterhelp.com", Brand: "Epson", Kind: rules.LookHelpline},
		{Domain: "epsonprinterfix.com", Brand: "Epson", Kind: rules.LookHelpline}}
	cfg := Config{Store: db, Resolver: &enrich.Resolver{Servers: []string{dnsSrv.Addr}, Timeout: time.Second}, Rate: 1000,
		Registry: &enrich.RDAP{BootstrapOptions: enrich.BootstrapOptions{Location: bootFile}, Guard: guard, Timeout: time.Second}}
	res, err := Run(context.Background(), cfg, cands)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, f := range res.Found {
		found = append(found, f.Domain)
	}
	slices.Sort(found)
	if !slices.Equal(found, []string{"epsonprinterhelp.com", "epsonprintersupport.com"}) || res.Registered != 1 || res.RegistryAsked != 2 || res.Absent != 1 {
		t.Errorf("found %v, %+v", found, res)
	}
	if n := len(rdapSrv.Times()); n != 2 {
		t.Errorf("the registry was asked %d times; want only the two names DNS does not know", n)
	}

	// With a budget of one, the second name DNS does not know is left to DNS's answer.
	db2, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "h2.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	cfg.Store, cfg.RegistryMax = db2, 1
	res, err = Run(context.Background(), cfg, cands)
	if err != nil {
		t.Fatal(err)
	}
	if res.RegistryAsked != 1 {
		t.Errorf("asked the registry %d times with a budget of 1", res.RegistryAsked)
	}
}
