package enrich

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

// RegistrationCache keeps registration data between lookups (the store implements it).
type RegistrationCache interface {
	CachedRegistration(ctx context.Context, registrable string, now time.Time) (*watcher.Registration, bool, error)
	CacheRegistration(ctx context.Context, registrable string, reg *watcher.Registration, expires time.Time) error
}

// Enricher combines the lookups. Any of DNS, RDAP and WHOIS may be nil (not asked).
type Enricher struct {
	Rules *rules.RuleSet
	DNS   *Resolver
	RDAP  *RDAP
	WHOIS *WHOIS
	Cache RegistrationCache
	// FoundTTL and NotFoundTTL bound how long registration answers are reused (1 day, 6 h);
	// unknown answers are never cached.
	FoundTTL, NotFoundTTL time.Duration
	Now                   func() time.Time

	flight singleflight.Group // one registration lookup per registrable domain at a time
}

func (e *Enricher) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now().UTC()
}

// MaxNamesPerCase bounds the names of one case whose DNS is looked up in one enrichment: a
// certificate can list hundreds of subdomains of one scam domain, and their records add
// little once a few are known.
const MaxNamesPerCase = 8

// Enrich looks a case up: the registration of its registrable domain (RDAP first, WHOIS when
// RDAP cannot answer; once for all names, and cached) beside the DNS of each name (at most
// MaxNamesPerCase).
func (e *Enricher) Enrich(ctx context.Context, registrable string, names []string) *watcher.Enrichment {
	if registrable == "" && len(names) > 0 {
		registrable = names[0]
	}
	if len(names) == 0 {
		names = []string{registrable}
	}
	names = names[:min(len(names), MaxNamesPerCase)]
	out := &watcher.Enrichment{Registrable: registrable, At: e.now(), DNS: make([]watcher.DNSFacts, len(names))}
	var wg sync.WaitGroup
	for i, name := range names {
		if e.DNS == nil {
			out.DNS[i] = watcher.DNSFacts{Name: name, State: watcher.Unknown, Reason: "DNS lookups are off"}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := e.DNS.Lookup(ctx, e.Rules, name, registrable)
			d.Name = name
			out.DNS[i] = d
		}()
	}
	out.Registration = e.registration(ctx, registrable)
	wg.Wait()
	return out
}

// Unanswered reports whether nothing answered at all: every DNS lookup and the registration
// lookup are unknown.
func Unanswered(en *watcher.Enrichment) bool {
	return en.Registration.State == watcher.Unknown && en.Lookups() == watcher.Unknown
}

// registration looks a registrable domain up once, however many of its names ask at the same
// time (www. and the apex usually arrive together).
func (e *Enricher) registration(ctx context.Context, registrable string) watcher.Registration {
	v, _, _ := e.flight.Do(registrable, func() (any, error) { return e.lookupRegistration(ctx, registrable), nil })
	return v.(watcher.Registration)
}

func (e *Enricher) lookupRegistration(ctx context.Context, registrable string) watcher.Registration {
	if e.Cache != nil {
		if reg, ok, err := e.Cache.CachedRegistration(ctx, registrable, e.now()); err == nil && ok {
			return *reg
		}
	}
	reg := watcher.Registration{State: watcher.Unknown, Reason: "registration lookups are off"}
	if e.RDAP != nil {
		reg = e.RDAP.Lookup(ctx, registrable)
	}
	if reg.State == watcher.Unknown && e.WHOIS != nil {
		viaRDAP := reg
		reg = e.WHOIS.Lookup(ctx, registrable)
		if reg.State == watcher.Unknown && e.RDAP != nil {
			reg.Reason = "RDAP: " + viaRDAP.Reason + "; WHOIS: " + reg.Reason
		}
	}
	if e.Cache != nil && reg.State != watcher.Unknown && ctx.Err() == nil {
		ttl := e.FoundTTL
		if ttl <= 0 {
			ttl = 24 * time.Hour
		}
		if reg.State == watcher.NotFound {
			ttl = e.NotFoundTTL
			if ttl <= 0 {
				ttl = 6 * time.Hour
			}
		}
		_ = e.Cache.CacheRegistration(ctx, registrable, &reg, e.now().Add(ttl)) // a failed cache write costs a lookup later, nothing more
	}
	return reg
}
