package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/store"
)

const enrichUsage = `usage: helpwatch enrich [flags] NAME...
       helpwatch enrich --queue [--db PATH] [flags]

Looks names up and prints one JSON object per name: the first score, what was learned (DNS
records, wildcard and parking; registration date, registrar, abuse contact, name servers and
statuses from RDAP, or WHOIS where RDAP cannot answer) and the score revised with it. Every
lookup result is found, not_found or unknown (with the reason).

--queue works through the findings database's enrichment queue instead (what 'helpwatch watch'
does in the background), stores the results, and exits when the queue is empty.`

// enrichFlags configure the lookups; watch and enrich share them.
type enrichFlags struct {
	resolvers   listFlag
	bootstrap   *string
	whoisServer *string
	ianaWhois   *string
	rate        *float64
	burst       *int
	timeout     *time.Duration
}

func addEnrichFlags(fs *flag.FlagSet) *enrichFlags {
	ef := &enrichFlags{}
	fs.Var(&ef.resolvers, "resolver", "DNS resolver host:port (repeatable; default: /etc/resolv.conf)")
	ef.bootstrap = fs.String("rdap-bootstrap", "", "RDAP bootstrap file or URL (default: IANA's, cached for a day, with a built-in fallback)")
	ef.whoisServer = fs.String("whois-server", "", "ask this WHOIS server (host:port) for every TLD instead of IANA's referral")
	ef.ianaWhois = fs.String("iana-whois", "whois.iana.org:43", "WHOIS server that names each TLD's WHOIS server")
	ef.rate = fs.Float64("lookup-rate", 1, "requests per second to any one RDAP or WHOIS server (0: no limit)")
	ef.burst = fs.Int("lookup-burst", 3, "requests allowed at once to one server before the rate applies")
	ef.timeout = fs.Duration("lookup-timeout", 10*time.Second, "time limit of one RDAP or WHOIS request")
	return ef
}

// build makes the Enricher; cache may be nil.
func (ef *enrichFlags) build(rs *rules.RuleSet, cache enrich.RegistrationCache, log func(msg string, args ...any)) (*enrich.Enricher, error) {
	servers := []string(ef.resolvers)
	for i, s := range servers {
		if !strings.Contains(s, ":") {
			servers[i] = s + ":53"
		}
	}
	if len(servers) == 0 {
		var err error
		if servers, err = enrich.SystemResolvers(); err != nil {
			return nil, err
		}
	}
	if *ef.rate < 0 {
		return nil, usageError("--lookup-rate must not be negative")
	}
	limits := &enrich.Limits{Rate: rate.Limit(*ef.rate), Burst: *ef.burst}
	cacheDir := ""
	if dir, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(dir, "helpwatch")
	}
	return &enrich.Enricher{
		Rules: rs,
		DNS:   &enrich.Resolver{Servers: servers, Timeout: 2 * time.Second, Retries: 2},
		RDAP: &enrich.RDAP{Limits: limits, HTTP: newLookupHTTPClient(*ef.timeout), UserAgent: "helpwatch (+https://github.com/helpwatch/helpwatch)",
			BootstrapOptions: enrich.BootstrapOptions{Location: *ef.bootstrap, CacheDir: cacheDir},
			OnBootstrap: func(b *enrich.Bootstrap) {
				if log != nil {
					log("RDAP bootstrap loaded", "source", b.Source)
				}
			}},
		WHOIS: &enrich.WHOIS{Server: *ef.whoisServer, IANAServer: *ef.ianaWhois, Timeout: *ef.timeout, Limits: limits},
		Cache: cache,
	}, nil
}

func runEnrich(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("enrich", enrichUsage, stderr)
	ef := addEnrichFlags(fs)
	loadRules := addRulesFlag(fs)
	queue := fs.Bool("queue", false, "enrich the findings queued in --db and store the results")
	dbPath := fs.String("db", store.DefaultPath, "findings database (with --queue)")
	workers := fs.Int("workers", 16, "concurrent lookups (with --queue)")
	names, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *queue == (len(names) > 0) {
		return usageError("give names to look up, or --queue (not both)")
	}
	rs, err := loadRules()
	if err != nil {
		return err
	}
	log := newLogger(stderr)
	ctx, stop := watchContext()
	defer stop()
	if *queue {
		if _, err := os.Stat(*dbPath); err != nil {
			return fmt.Errorf("no findings database at %s: %w", *dbPath, err)
		}
		db, err := store.OpenSQLite(ctx, *dbPath)
		if err != nil {
			return err
		}
		defer db.Close()
		e, err := ef.build(rs, db, log.Info)
		if err != nil {
			return err
		}
		stats := &watcher.Stats{}
		q := &enrich.Queue{Store: db, Enricher: e, Workers: *workers, Drain: true, Log: log, Stats: stats}
		err = q.Run(ctx)
		pending, _ := db.PendingEnrichment(context.Background())
		log.Info("enrichment done", "enriched", stats.Enriched.Load(), "requeued", stats.EnrichLate.Load(), "still_queued", pending)
		return err
	}
	e, err := ef.build(rs, nil, nil)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	sc := rs.NewScorer()
	type record struct {
		Name       string              `json:"name"`
		Score      rules.Result        `json:"score"`
		Enrichment *watcher.Enrichment `json:"enrichment"`
		Revised    rules.Result        `json:"revised"`
	}
	var failed error
	for _, name := range names {
		first := sc.Score(name)
		if first.Verdict == rules.VerdictInvalid {
			failed = errors.Join(failed, fmt.Errorf("%s: %s", name, first.Error))
			continue
		}
		en := e.Enrich(ctx, first.Domain, first.Registrable)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := enc.Encode(record{Name: first.Domain, Score: first, Enrichment: en, Revised: rs.Revise(&first, enrich.Facts(en))}); err != nil {
			return err
		}
	}
	return failed
}

// newLookupHTTPClient bounds every RDAP request: connect, headers and the whole exchange.
func newLookupHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			DialContext:            (&net.Dialer{Timeout: min(timeout, 5*time.Second)}).DialContext,
			TLSHandshakeTimeout:    min(timeout, 5*time.Second),
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
			MaxIdleConnsPerHost:    4,
		},
	}
}
