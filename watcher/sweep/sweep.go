// Package sweep finds look-alikes of the brands that exist but never reached Certificate
// Transparency: a scam domain served over plain HTTP, or registered and not live yet, has no
// certificate. It generates candidates from the catalog (rules.LookAlikes), remembers them in
// the store, asks DNS which are registered (NS, then A), at a polite rate, then the registry
// (RDAP) about a bounded number of the ones DNS does not know (a domain registered but not
// delegated yet, or on hold, has no DNS), and hands the ones that exist to the pipeline as a
// source of cases; the ones that do not are asked again on a schedule, so a registration is
// noticed within a day of the next sweep.
package sweep

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/time/rate"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Store is what a sweep reads and records.
type Store interface {
	AddSweepCandidates(ctx context.Context, names []store.SweepName) (int, error)
	DueSweepNames(ctx context.Context, now time.Time, limit int) ([]store.SweepName, error)
	RecordSweep(ctx context.Context, domain, state string, at, next time.Time) error
}

// Resolver answers DNS questions (enrich.Resolver).
type Resolver interface {
	Query(ctx context.Context, name string, qtype uint16) ([]string, int, error)
}

// Registry answers whether a domain is registered (enrich.RDAP).
type Registry interface {
	Lookup(ctx context.Context, domain string) watcher.Registration
}

// Config is one sweep.
type Config struct {
	Store    Store
	Resolver Resolver
	// Registry, when set, is asked about names DNS says do not exist or did not answer for,
	// at most RegistryMax of them in one sweep (default 2,000: registries allow few requests,
	// and most candidates are not registered). Its pace is its own (enrich.Limits).
	Registry    Registry
	RegistryMax int
	// Rate bounds the DNS questions per second (default 20); Workers the questions in flight
	// (default 8).
	Rate    float64
	Workers int
	// Recheck is when a name that does not exist is asked again (default a day); one that got
	// no answer is asked again in an hour.
	Recheck time.Duration
	// Limit bounds the names asked about in one sweep (default 200,000).
	Limit int
	Now   func() time.Time
	// Progress is told of each name asked about (concurrently).
	Progress func(done, total int)
}

// Result says what one sweep found.
type Result struct {
	Added, Asked, Absent, Unknown int
	// RegistryAsked counts the names the registry was asked about; Registered, those it
	// knows although DNS does not (they are among Found).
	RegistryAsked, Registered int
	// Found are the candidates that exist, to be stored as cases.
	Found []store.SweepName
}

// Run remembers candidates and asks about the ones that are due.
func Run(ctx context.Context, cfg Config, candidates []rules.LookAlike) (*Result, error) {
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 20
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = 24 * time.Hour
	}
	if cfg.Limit <= 0 {
		cfg.Limit = 200000
	}
	if cfg.RegistryMax <= 0 {
		cfg.RegistryMax = 2000
	}
	var registryLeft atomic.Int64
	registryLeft.Store(int64(cfg.RegistryMax))
	names := make([]store.SweepName, len(candidates))
	for i, c := range candidates {
		names[i] = store.SweepName{Domain: c.Domain, Brand: c.Brand, Kind: c.Kind}
	}
	res := &Result{}
	var err error
	if res.Added, err = cfg.Store.AddSweepCandidates(ctx, names); err != nil {
		return nil, fmt.Errorf("remembering the candidates: %w", err)
	}
	due, err := cfg.Store.DueSweepNames(ctx, now(), cfg.Limit)
	if err != nil {
		return nil, err
	}
	limiter := rate.NewLimiter(rate.Limit(cfg.Rate), 1)
	work := make(chan store.SweepName)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				state := exists(ctx, cfg.Resolver, limiter, n.Domain)
				askedRegistry, registered := false, false
				if state != store.SweepExists && cfg.Registry != nil && ctx.Err() == nil && registryLeft.Add(-1) >= 0 {
					askedRegistry = true
					switch cfg.Registry.Lookup(ctx, n.Domain).State {
					case watcher.Found:
						state, registered = store.SweepExists, true
					case watcher.NotFound:
						state = store.SweepAbsent
					}
				}
				if ctx.Err() != nil {
					return
				}
				at := now()
				next := at
				switch state {
				case store.SweepAbsent:
					next = at.Add(cfg.Recheck)
				case store.SweepUnknown:
					next = at.Add(time.Hour)
				}
				err := cfg.Store.RecordSweep(ctx, n.Domain, state, at, next)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				res.Asked++
				if askedRegistry {
					res.RegistryAsked++
				}
				if registered {
					res.Registered++
				}
				switch state {
				case store.SweepExists:
					n.State = state
					res.Found = append(res.Found, n)
				case store.SweepAbsent:
					res.Absent++
				default:
					res.Unknown++
				}
				done := res.Asked
				mu.Unlock()
				if cfg.Progress != nil {
					cfg.Progress(done, len(due))
				}
			}
		}()
	}
feed:
	for _, n := range due {
		select {
		case work <- n:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	return res, ctx.Err()
}

// exists asks whether domain is registered: its NS (a registered domain is delegated), then
// its A. NXDOMAIN is absent; NOERROR exists (a name with no records of either type still
// exists); no answer is unknown.
func exists(ctx context.Context, r Resolver, limiter *rate.Limiter, domain string) string {
	state := store.SweepUnknown
	for _, qtype := range []uint16{dns.TypeNS, dns.TypeA} {
		if limiter.Wait(ctx) != nil {
			return store.SweepUnknown
		}
		_, rcode, err := r.Query(ctx, domain, qtype)
		switch {
		case err != nil:
			continue // ask the other question
		case rcode == dns.RcodeNameError:
			return store.SweepAbsent
		case rcode == dns.RcodeSuccess:
			return store.SweepExists
		}
	}
	return state
}

// Source hands the names a sweep found to the pipeline, as a names-only source: no
// certificate, the certificate log named "look-alike sweep".
type Source struct {
	Names []store.SweepName
	Now   func() time.Time
}

func (s *Source) Live() bool     { return false }
func (s *Source) String() string { return "look-alike sweep" }

// Run emits every found name once.
func (s *Source) Run(ctx context.Context, emit func(*watcher.Event), stats *watcher.Stats) error {
	now := time.Now().UTC()
	if s.Now != nil {
		now = s.Now().UTC()
	}
	for _, n := range s.Names {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		stats.Messages.Add(1)
		stats.Touch()
		emit(&watcher.Event{Names: []string{n.Domain}, Seen: now, Cert: watcher.Certificate{Index: -1, LogName: "look-alike sweep (" + n.Kind + ")"}})
	}
	return nil
}
