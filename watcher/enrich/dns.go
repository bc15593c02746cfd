package enrich

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/miekg/dns"
	"golang.org/x/sync/singleflight"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

// Resolver asks recursive resolvers for the records enrichment needs. Every query has a
// timeout and retries (rotating through the servers), a truncated UDP answer is asked again over
// TCP, identical queries in flight are made once, and answers are cached for their TTL.
type Resolver struct {
	Servers []string      // host:port of recursive resolvers
	Timeout time.Duration // per attempt (default 2 s)
	Retries int           // attempts after the first (default 2)

	flight singleflight.Group
	mu     sync.Mutex
	cache  *simplelru.LRU[string, dnsAnswer]
}

type dnsAnswer struct {
	rcode   int
	records []string
	expires time.Time
}

// SystemResolvers reads the resolvers of /etc/resolv.conf.
func SystemResolvers() ([]string, error) {
	cfg, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("reading /etc/resolv.conf: %w (name a resolver instead)", err)
	}
	var out []string
	for _, s := range cfg.Servers {
		out = append(out, net.JoinHostPort(s, cfg.Port))
	}
	if len(out) == 0 {
		return nil, errors.New("/etc/resolv.conf lists no name server (name a resolver instead)")
	}
	return out, nil
}

// errDNS is an answer that says nothing about the name (SERVFAIL, REFUSED, a timeout).
type errDNS struct{ msg string }

func (e *errDNS) Error() string { return e.msg }

// Query returns the records of type qtype for name as strings (addresses, host names without
// the trailing dot, TXT text) and the response code. NXDOMAIN is not an error.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16) ([]string, int, error) {
	key := dns.TypeToString[qtype] + " " + strings.ToLower(name)
	now := time.Now()
	r.mu.Lock()
	if r.cache == nil {
		r.cache, _ = simplelru.NewLRU[string, dnsAnswer](20000, nil)
	}
	if a, ok := r.cache.Get(key); ok && now.Before(a.expires) {
		r.mu.Unlock()
		return a.records, a.rcode, nil
	}
	r.mu.Unlock()
	v, err, _ := r.flight.Do(key, func() (any, error) {
		a, err := r.exchange(ctx, name, qtype)
		if err == nil {
			r.mu.Lock()
			r.cache.Add(key, a)
			r.mu.Unlock()
		}
		return a, err
	})
	if err != nil {
		return nil, 0, err
	}
	a := v.(dnsAnswer)
	return a.records, a.rcode, nil
}

func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (dnsAnswer, error) {
	if len(r.Servers) == 0 {
		return dnsAnswer{}, errors.New("no DNS resolver configured")
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	retries := r.Retries
	if retries <= 0 {
		retries = 2
	}
	msg := new(dns.Msg)
	msg.SetQuestion(dns.Fqdn(name), qtype)
	msg.SetEdns0(1232, false)
	var lastErr error
	for attempt := 0; attempt <= retries; attempt++ {
		if ctx.Err() != nil {
			return dnsAnswer{}, ctx.Err()
		}
		server := r.Servers[attempt%len(r.Servers)]
		resp, err := r.ask(ctx, "udp", server, msg, timeout)
		if err == nil && resp.Truncated {
			resp, err = r.ask(ctx, "tcp", server, msg, timeout)
		}
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", server, err)
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return toAnswer(resp, qtype), nil
		}
		lastErr = &errDNS{fmt.Sprintf("%s answered %s", server, dns.RcodeToString[resp.Rcode])}
	}
	return dnsAnswer{}, lastErr
}

func (r *Resolver) ask(ctx context.Context, network, server string, msg *dns.Msg, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: timeout}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := c.DialContext(actx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// miekg/dns only reads the context's deadline; closing the socket is what makes a stopped
	// watch return at once instead of after the timeout.
	stop := context.AfterFunc(actx, func() { conn.Close() })
	defer stop()
	resp, _, err := c.ExchangeWithConnContext(actx, msg, conn)
	return resp, err
}

func toAnswer(resp *dns.Msg, qtype uint16) dnsAnswer {
	a := dnsAnswer{rcode: resp.Rcode}
	ttl := uint32(300) // negative and empty answers
	first := true
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype != qtype {
			continue // CNAME chain records when asking for A
		}
		if first || rr.Header().Ttl < ttl {
			ttl, first = rr.Header().Ttl, false
		}
		switch v := rr.(type) {
		case *dns.A:
			a.records = append(a.records, v.A.String())
		case *dns.AAAA:
			a.records = append(a.records, v.AAAA.String())
		case *dns.CNAME:
			a.records = append(a.records, strings.TrimSuffix(v.Target, "."))
		case *dns.NS:
			a.records = append(a.records, strings.ToLower(strings.TrimSuffix(v.Ns, ".")))
		case *dns.MX:
			a.records = append(a.records, strings.ToLower(strings.TrimSuffix(v.Mx, ".")))
		case *dns.TXT:
			a.records = append(a.records, boundText(strings.Join(v.Txt, ""), 512))
		}
		if len(a.records) >= 32 { // a hostile zone can answer with thousands
			break
		}
	}
	ttl = min(max(ttl, 30), 3600)
	a.expires = time.Now().Add(time.Duration(ttl) * time.Second)
	return a
}

func boundText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Lookup gathers the DNS facts of name (A, AAAA, CNAME) and of its registrable domain (NS, MX,
// TXT, and whether a random label under it resolves: wildcard DNS). Parking is read from the
// name servers and addresses with the rule set's parking data.
func (r *Resolver) Lookup(ctx context.Context, rs *rules.RuleSet, name, registrable string) watcher.DNSFacts {
	type q struct {
		name  string
		qtype uint16
		into  *[]string
	}
	var f watcher.DNSFacts
	var catchAll []string
	queries := []q{
		{name, dns.TypeA, &f.A}, {name, dns.TypeAAAA, &f.AAAA}, {name, dns.TypeCNAME, &f.CNAME},
		{registrable, dns.TypeNS, &f.NS}, {registrable, dns.TypeMX, &f.MX}, {registrable, dns.TypeTXT, &f.TXT},
		{randomLabel() + "." + registrable, dns.TypeA, &catchAll},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(queries))
	rcodes := make([]int, len(queries))
	for i := range queries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs, rcode, err := r.Query(ctx, queries[i].name, queries[i].qtype)
			*queries[i].into, rcodes[i], errs[i] = recs, rcode, err
		}()
	}
	wg.Wait()
	answered := 0
	var firstErr error
	for i, err := range errs {
		if err == nil {
			answered++
		} else if firstErr == nil && i < 6 {
			firstErr = err
		}
	}
	switch {
	case answered == 0 || (errs[0] != nil && errs[3] != nil):
		f.State, f.Reason = watcher.Unknown, "DNS did not answer: "+firstErr.Error()
		return f
	case rcodes[0] == dns.RcodeNameError && rcodes[3] == dns.RcodeNameError:
		f.State = watcher.NotFound
	default:
		f.State = watcher.Found
	}
	f.CatchAll = errs[6] == nil && len(catchAll) > 0
	var addrs []netip.Addr
	for _, s := range append(append([]string(nil), f.A...), f.AAAA...) {
		if a, err := netip.ParseAddr(s); err == nil {
			addrs = append(addrs, a)
		}
	}
	f.ParkedBy = rs.ParkingService(f.NS, addrs)
	return f
}

// randomLabel is a label no real zone has, for the wildcard test.
func randomLabel() string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 16)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return "hw-" + string(b)
}
