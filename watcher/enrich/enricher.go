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

// Enrich looks name up. DNS and registration run side by side; registration asks RDAP first
// and WHOIS when RDAP cannot answer (no server for the TLD, an error, a rate limit), and a
// registrable domain is looked up once for all the names under it while its answer is cached.
func (e *Enricher) Enrich(ctx context.Context, name, registrable string) *watcher.Enrichment {
	if registrable == "" {
		registrable = name
	}
	out := &watcher.Enrichment{Name: name, Registrable: registrable, At: e.now()}
	var wg sync.WaitGroup
	if e.DNS != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out.DNS = e.DNS.Lookup(ctx, e.Rules, name, registrable)
		}()
	} else {
		out.DNS = watcher.DNSFacts{State: watcher.Unknown, Reason: "DNS lookups are off"}
	}
	out.Registration = e.registration(ctx, registrable)
	wg.Wait()
	return out
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

// Facts reduces an enrichment to what the rules score.
func Facts(en *watcher.Enrichment) rules.Facts {
	f := rules.Facts{Now: en.At}
	if en.Registration.State == watcher.Found {
		f.Registered = en.Registration.Created
	}
	if en.DNS.State != watcher.Unknown {
		f.DNSKnown = true
		f.Resolves = len(en.DNS.A)+len(en.DNS.AAAA)+len(en.DNS.CNAME) > 0
		f.HasNS = len(en.DNS.NS) > 0
		f.HasMX = len(en.DNS.MX) > 0
		f.CatchAll = en.DNS.CatchAll
		f.ParkedBy = en.DNS.ParkedBy
	}
	return f
}
