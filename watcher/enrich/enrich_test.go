package enrich

import (
	"context"
	"fmt"
	"github.com/helpwatch/helpwatch/watcher/testkit"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
	"github.com/helpwatch/helpwatch/watcher/netguard"
)

var ruleSet = testkit.DefaultRules

func TestDNSLookupFacts(t *testing.T) {
	srv := enrichtest.StartDNS(t)
	srv.Add("hp-printer-help.com. 600 IN A 192.0.2.10")
	srv.Add("hp-printer-help.com. 600 IN NS ns1.sedoparking.com.")
	srv.Add("hp-printer-help.com. 600 IN MX 10 mail.hp-printer-help.com.")
	srv.Add(`hp-printer-help.com. 600 IN TXT "v=spf1 -all"`)
	srv.Add("www.canon-ij-help.net. 600 IN CNAME canon-ij-help.net.")
	srv.Add("canon-ij-help.net. 600 IN NS ns1.example-dns.net.")
	srv.Configure(func(s *enrichtest.DNSServer) { s.Wildcard["canon-ij-help.net."] = "192.0.2.20" })
	rs := ruleSet(t)
	r := &Resolver{Servers: []string{srv.Addr}, Timeout: 300 * time.Millisecond, Retries: 1}
	ctx := context.Background()

	f := r.Lookup(ctx, rs, "hp-printer-help.com", "hp-printer-help.com")
	if f.State != watcher.Found || strings.Join(f.A, ",") != "192.0.2.10" || f.NS[0] != "ns1.sedoparking.com" ||
		f.MX[0] != "mail.hp-printer-help.com" || f.TXT[0] != "v=spf1 -all" || f.ParkedBy != "sedoparking.com" || f.CatchAll {
		t.Errorf("hp facts %+v", f)
	}
	f = r.Lookup(ctx, rs, "www.canon-ij-help.net", "canon-ij-help.net")
	if f.State != watcher.Found || !f.CatchAll || f.ParkedBy != "" || len(f.CNAME) != 1 {
		t.Errorf("wildcard facts %+v", f)
	}
	f = r.Lookup(ctx, rs, "epson-gone.org", "epson-gone.org")
	if f.State != watcher.NotFound {
		t.Errorf("NXDOMAIN read as %+v", f)
	}

	// Answers are cached for their TTL: asking again does not reach the server.
	before := srv.Count("A", "hp-printer-help.com")
	r.Lookup(ctx, rs, "hp-printer-help.com", "hp-printer-help.com")
	if after := srv.Count("A", "hp-printer-help.com"); after != before {
		t.Errorf("cached answer asked again: %d → %d queries", before, after)
	}
}

func TestDNSTruncationFailuresAndInflightDedupe(t *testing.T) {
	srv := enrichtest.StartDNS(t)
	srv.Add(`big.example. 600 IN TXT "a long record"`)
	srv.Configure(func(s *enrichtest.DNSServer) { s.Truncate["big.example."] = true })
	srv.Configure(func(s *enrichtest.DNSServer) { s.ServFail["broken.example."] = true })
	srv.Configure(func(s *enrichtest.DNSServer) { s.Silent["silent.example."] = true })
	srv.Add("slow.example. 600 IN A 192.0.2.30")
	r := &Resolver{Servers: []string{srv.Addr}, Timeout: 200 * time.Millisecond, Retries: 2}
	ctx := context.Background()

	recs, _, err := r.Query(ctx, "big.example", dns.TypeTXT)
	if err != nil || len(recs) != 1 {
		t.Errorf("truncated UDP answer not retried over TCP: %v %v", recs, err)
	}
	if _, _, err := r.Query(ctx, "broken.example", dns.TypeA); err == nil || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Errorf("SERVFAIL: %v", err)
	}
	if _, _, err := r.Query(ctx, "silent.example", dns.TypeA); err == nil || !strings.Contains(err.Error(), srv.Addr) {
		t.Errorf("silent server: %v", err)
	}
	if n := srv.Count("A", "silent.example"); n != 3 {
		t.Errorf("silent server asked %d times, want 3 (1 + 2 retries)", n)
	}
	f := r.Lookup(ctx, ruleSet(t), "silent.example", "silent.example")
	if f.State != watcher.Unknown || !strings.Contains(f.Reason, "DNS did not answer") {
		t.Errorf("silent lookup %+v", f)
	}

	// Ten identical queries at once reach the server once.
	srv.Configure(func(s *enrichtest.DNSServer) { s.Delay = 50 * time.Millisecond })
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); r.Query(ctx, "slow.example", dns.TypeA) }()
	}
	wg.Wait()
	if n := srv.Count("A", "slow.example"); n != 1 {
		t.Errorf("10 concurrent identical queries made %d server queries", n)
	}

	// No server reachable at all.
	dead := &Resolver{Servers: []string{"127.0.0.1:1"}, Timeout: 100 * time.Millisecond, Retries: 0}
	if f := dead.Lookup(ctx, ruleSet(t), "x.example", "x.example"); f.State != watcher.Unknown {
		t.Errorf("unreachable resolver: %+v", f)
	}
}

func TestRDAPLookupFollowsRegistrarAndHandlesFaults(t *testing.T) {
	var srv *enrichtest.RDAPServer
	srv = enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		switch {
		case strings.HasPrefix(r.URL.Path, "/registrar/"):
			// The registrar's answer adds what the registry lacks (here: nothing new but the host).
			fmt.Fprint(w, `{"objectClassName":"domain","ldhName":"`+name+`","entities":[{"objectClassName":"entity","roles":["registrar"],
			"vcardArray":["vcard",[["version",{},"text","4.0"],["fn",{},"text","Example Registrar, LLC"]]]}]}`)
		case name == "hp-printer-help.test":
			// The related link points at a different host name for the same server.
			related := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/registrar/domain/" + name
			fmt.Fprint(w, enrichtest.RegistryDomain(name, related, "2026-11-20T09:00:00Z"))
		case name == "limited.test":
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
		case name == "garbage.test":
			fmt.Fprint(w, "<html>not rdap</html>")
		case name == "huge.test":
			fmt.Fprint(w, `{"objectClassName":"domain","x":"`+strings.Repeat("a", 2<<20)+`"}`)
		case name == "slow.test":
			time.Sleep(time.Second)
		case name == "error.test":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	boot, err := parseBootstrap(enrichtest.BootstrapFor(srv.URL, "test"), "test")
	if err != nil {
		t.Fatal(err)
	}
	limits := &Limits{}
	r := &RDAP{Bootstrap: boot, Limits: limits, Timeout: 300 * time.Millisecond, Guard: allowLocal(t, "127.0.0.1")}
	ctx := context.Background()

	reg := r.Lookup(ctx, "hp-printer-help.test")
	if reg.State != watcher.Found || reg.Registrar != "Example Registrar, LLC" || reg.RegistrarIANAID != "9999" ||
		reg.AbuseEmail != "abuse@registrar.test" || reg.AbusePhone != "+1.5555550100" ||
		!reg.Created.Equal(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)) || reg.NameServers[0] != "ns1.example-dns.net" ||
		!strings.Contains(reg.Server, "localhost") {
		t.Errorf("registry+registrar: %+v", reg)
	}
	if reg := r.Lookup(ctx, "nothing.test"); reg.State != watcher.NotFound {
		t.Errorf("404: %+v", reg)
	}
	for _, tc := range []struct{ name, want string }{
		{"garbage.test", "unreadable"}, {"huge.test", "too large"}, {"slow.test", "Timeout"},
		{"error.test", "HTTP 500"}, {"x.nordap", "no RDAP server for .nordap"},
		{"limited.test", "rate limited"}, // last: it pauses the server
	} {
		if reg := r.Lookup(ctx, tc.name); reg.State != watcher.Unknown || !strings.Contains(reg.Reason, tc.want) {
			t.Errorf("%s: %+v, want unknown with %q", tc.name, reg, tc.want)
		}
	}
	// The 429 paused that server: the next request waits for Retry-After.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if reg := r.Lookup(short, "nothing.test"); reg.State != watcher.Unknown {
		t.Errorf("a paused server was asked at once: %+v", reg)
	}
}

// The real Verisign answer for google.com (shared data) reads as expected.
func TestRDAPRealVerisignAnswer(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "data", "rdap", "meeb_whoisit", "tests", "data_rdap_response_domain1.json"))
	if err != nil {
		t.Skipf("shared data not available (%v)", err)
	}
	srv := enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "google.com") && !strings.Contains(r.Host, "markmonitor") {
			w.Write(body)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	boot, _ := parseBootstrap(enrichtest.BootstrapFor(srv.URL, "com"), "test")
	// The related link points at rdap.markmonitor.com, which the test client cannot reach: the
	// registry's answer must stand on its own.
	reg := (&RDAP{Bootstrap: boot, Timeout: 200 * time.Millisecond, Guard: allowLocal(t, srv.Listener.Addr().String())}).Lookup(context.Background(), "google.com")
	if reg.State != watcher.Found || reg.Registrar != "MarkMonitor Inc." || reg.RegistrarIANAID != "292" ||
		reg.AbuseEmail != "abusecomplaints@markmonitor.com" || reg.Created.Year() != 1997 {
		t.Errorf("real answer: %+v", reg)
	}
}

// allowLocal is the address guard with exactly the named local servers let through: tests
// reach their own servers and nothing else (no other loopback port, nothing off the machine
// but what the guard lets through, and the public names tests use do not resolve here).
func allowLocal(t testing.TB, hosts ...string) *netguard.Guard {
	t.Helper()
	g := &netguard.Guard{}
	for _, h := range hosts {
		if err := g.AllowHost(h); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func TestWHOISLookupWithReferralAndFaults(t *testing.T) {
	registrar := enrichtest.StartWHOIS(t, func(q string) (string, bool) {
		return strings.Replace(enrichtest.RegistryWhois(q, ""), "Registrar WHOIS Server: \n", "", 1) + "Registrant Organization: REDACTED\n", false
	})
	registry := enrichtest.StartWHOIS(t, func(q string) (string, bool) {
		switch q {
		case "epson-setup-help.com":
			// likexian/whois follows a referral only to another host name, so the registrar
			// (also on 127.0.0.1) is named as localhost.
			return enrichtest.RegistryWhois(q, strings.Replace(registrar.Addr, "127.0.0.1", "localhost", 1)), false
		case "limited.com":
			return "WHOIS LIMIT EXCEEDED - SEE WWW.REGISTRY.TEST FOR DETAILS\n", false
		case "garbage.com":
			return "\x00\x01\x02 nothing useful here\n", false
		case "partial.com":
			return enrichtest.RegistryWhois(q, "")[:300], true // then stalls until the client gives up
		case "huge.com":
			return enrichtest.RegistryWhois(q, "") + strings.Repeat("% filler line to exhaust the budget\n", 20000), false
		}
		return fmt.Sprintf("No match for %q.\n>>> Last update of whois database: 2026-11-27T10:00:00Z <<<\n", strings.ToUpper(q)), false
	})
	limits := &Limits{}
	w := &WHOIS{Server: registry.Addr, Timeout: 300 * time.Millisecond, MaxBytes: 64 << 10, Limits: limits, Guard: allowLocal(t, "127.0.0.1")}
	ctx := context.Background()

	reg := w.Lookup(ctx, "epson-setup-help.com")
	if reg.State != watcher.Found || reg.Registrar != "Example Registrar, LLC" || reg.RegistrarIANAID != "9999" ||
		reg.AbuseEmail != "abuse@registrar.test" || reg.AbusePhone != "+1.5555550100" || reg.Created.Year() != 2026 ||
		len(registrar.Times()) != 1 {
		t.Errorf("registry + referral: %+v (registrar asked %d times)", reg, len(registrar.Times()))
	}
	if reg := w.Lookup(ctx, "nope.com"); reg.State != watcher.NotFound {
		t.Errorf("not found: %+v", reg)
	}
	if reg := w.Lookup(ctx, "partial.com"); reg.State != watcher.Found || !strings.Contains(reg.Reason, "partial") || reg.Created.IsZero() {
		t.Errorf("partial answer: %+v", reg)
	}
	if reg := w.Lookup(ctx, "huge.com"); reg.State != watcher.Found || !strings.Contains(reg.Reason, "size limit") {
		t.Errorf("oversized answer: %+v", reg)
	}
	if reg := w.Lookup(ctx, "garbage.com"); reg.State != watcher.Unknown {
		t.Errorf("garbage: %+v", reg)
	}
	if reg := w.Lookup(ctx, "limited.com"); reg.State != watcher.Unknown || !strings.Contains(reg.Reason, "rate limited") {
		t.Errorf("rate limit text: %+v", reg)
	}
	refused := &WHOIS{Server: "127.0.0.1:1", Timeout: 200 * time.Millisecond, Guard: allowLocal(t, "127.0.0.1:1")}
	if reg := refused.Lookup(ctx, "x.com"); reg.State != watcher.Unknown || !strings.Contains(reg.Reason, "127.0.0.1:1") {
		t.Errorf("refused: %+v", reg)
	}
}

func TestWHOISServerFromIANA(t *testing.T) {
	registry := enrichtest.StartWHOIS(t, func(q string) (string, bool) { return enrichtest.RegistryWhois(q, ""), false })
	iana := enrichtest.StartWHOIS(t, func(q string) (string, bool) {
		return "% IANA WHOIS server\ndomain:       COM\n\nrefer:        " + registry.Addr + "\n", false
	})
	w := &WHOIS{IANAServer: iana.Addr, Timeout: 300 * time.Millisecond, Guard: allowLocal(t, iana.Addr, registry.Addr)}
	for i := 0; i < 3; i++ {
		if reg := w.Lookup(context.Background(), fmt.Sprintf("hp-%d.com", i)); reg.State != watcher.Found {
			t.Fatalf("lookup %d: %+v", i, reg)
		}
	}
	if n := len(iana.Times()); n != 1 {
		t.Errorf("IANA asked %d times for one TLD, want 1 (cached)", n)
	}
}

func TestEnricherFallsBackToWHOISAndCaches(t *testing.T) {
	rdapSrv := enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	boot, _ := parseBootstrap(enrichtest.BootstrapFor(rdapSrv.URL, "com"), "test")
	registry := enrichtest.StartWHOIS(t, func(q string) (string, bool) { return enrichtest.RegistryWhois(q, ""), false })
	dnsSrv := enrichtest.StartDNS(t)
	dnsSrv.Add("canon-help.com. 600 IN A 192.0.2.40")
	cache := &memCache{}
	e := &Enricher{Rules: ruleSet(t), DNS: &Resolver{Servers: []string{dnsSrv.Addr}, Timeout: 200 * time.Millisecond},
		RDAP:  &RDAP{Bootstrap: boot, Timeout: time.Second, Guard: allowLocal(t, rdapSrv.Listener.Addr().String())},
		WHOIS: &WHOIS{Server: registry.Addr, Timeout: time.Second, Guard: allowLocal(t, registry.Addr)}, Cache: cache,
		Now: func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }}
	en := e.Enrich(context.Background(), "canon-help.com", []string{"canon-help.com"})
	if en.Registration.Source != "whois" || en.Registration.State != watcher.Found || en.DNS[0].State != watcher.Found {
		t.Fatalf("fallback: %+v", en)
	}
	f := watcher.EnrichmentFacts(en)
	if !f.DNSKnown || !f.Resolves || f.Registered.IsZero() {
		t.Errorf("facts %+v", f)
	}
	// The second name under the same registrable domain uses the cache.
	e.Enrich(context.Background(), "canon-help.com", []string{"www.canon-help.com"})
	if n := len(registry.Times()); n != 1 {
		t.Errorf("WHOIS asked %d times for one registrable domain", n)
	}
}

type memCache struct {
	mu sync.Mutex
	m  map[string]watcher.Registration
}

func (c *memCache) CachedRegistration(_ context.Context, k string, _ time.Time) (*watcher.Registration, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[k]
	return &r, ok, nil
}

func (c *memCache) CacheRegistration(_ context.Context, k string, r *watcher.Registration, _ time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]watcher.Registration{}
	}
	c.m[k] = *r
	return nil
}

// Rate limits hold per server: two RDAP servers each get at most their own rate, and one
// server's limit does not slow the other.
func TestRateLimitsHoldPerServer(t *testing.T) {
	answer := func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		fmt.Fprint(w, enrichtest.RegistryDomain(name, "", "2026-11-20T09:00:00Z"))
	}
	a, b := enrichtest.StartRDAP(t, answer), enrichtest.StartRDAP(t, answer)
	bootA, _ := parseBootstrap(enrichtest.BootstrapFor(a.URL, "aa"), "test")
	bootB, _ := parseBootstrap(enrichtest.BootstrapFor(b.URL, "bb"), "test")
	const rps, n = 20, 30
	limits := &Limits{Rate: rps, Burst: 1}
	ra := &RDAP{Bootstrap: bootA, Limits: limits, Guard: allowLocal(t, "127.0.0.1")}
	rb := &RDAP{Bootstrap: bootB, Limits: limits, Guard: allowLocal(t, "127.0.0.1")}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); ra.Lookup(context.Background(), fmt.Sprintf("n%d.aa", i)) }()
		go func() { defer wg.Done(); rb.Lookup(context.Background(), fmt.Sprintf("n%d.bb", i)) }()
	}
	wg.Wait()
	for label, srv := range map[string]*enrichtest.RDAPServer{"a": a, "b": b} {
		times := srv.Times()
		if len(times) != n {
			t.Fatalf("server %s got %d requests, want %d", label, len(times), n)
		}
		// In any window of d after the first request, at most burst + rate*d requests.
		for i := range times {
			for j := i + 1; j < len(times); j++ {
				d := times[j].Sub(times[i]).Seconds()
				if allowed := 1 + rps*d + 1; float64(j-i+1) > allowed {
					t.Fatalf("server %s: %d requests within %.3fs, over %d/s", label, j-i+1, d, rps)
				}
			}
		}
	}
	// The limits are not shared: the two servers were served side by side.
	ta, tb := a.Times(), b.Times()
	if tb[0].After(ta[len(ta)-1]) || ta[0].After(tb[len(tb)-1]) {
		t.Errorf("server b was served only after server a (or the reverse): their limits look shared")
	}
}

// A WHOIS lookup in progress ends as soon as its context does (a stopping watch must not wait
// for a slow server's timeout).
func TestWHOISLookupStopsWithContext(t *testing.T) {
	stall := enrichtest.StartWHOIS(t, func(q string) (string, bool) { return "", true })
	w := &WHOIS{Server: stall.Addr, Timeout: 10 * time.Second, Guard: allowLocal(t, stall.Addr)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan watcher.Registration, 1)
	go func() { done <- w.Lookup(ctx, "slow.com") }()
	// Cancelled once the server has the query: the lookup is then waiting on the server.
	for deadline := time.Now().Add(5 * time.Second); len(stall.Times()) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the query never reached the server")
		}
	}
	cancel()
	select {
	case reg := <-done:
		if reg.State != watcher.Unknown {
			t.Errorf("cancelled lookup: %+v", reg)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the lookup ran on after its context ended")
	}
}
