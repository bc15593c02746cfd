package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/time/rate"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/netguard"
	"github.com/helpwatch/helpwatch/watcher/output"
)

const enrichUsage = `usage: helpwatch enrich [flags] NAME...
       helpwatch enrich --queue [--db PATH|URL] [flags]

Looks names up and prints one JSON object per name: the first score, what was learned (DNS
records, wildcard and parking; registration date, registrar, abuse contact, name servers and
statuses from RDAP, or WHOIS where RDAP cannot answer) and the score revised with it. Every
lookup result is found, not_found or unknown (with the reason).

--queue works through the findings database's enrichment jobs instead (what 'helpwatch watch'
does in the background; 'helpwatch work --kinds enrich --drain'), stores the results, and exits
when nothing is due.`

// enrichFlags configure the lookups; watch and enrich share them.
type enrichFlags struct {
	guard       *guardFlags
	bootstrap   *string
	whoisServer *string
	ianaWhois   *string
	rate        *float64
	burst       *int
	timeout     *time.Duration
}

func addEnrichFlags(fs *flag.FlagSet) *enrichFlags {
	ef := addRDAPFlags(fs)
	ef.whoisServer = fs.String("whois-server", "", "ask this WHOIS server (host:port) for every TLD instead of IANA's referral")
	ef.ianaWhois = fs.String("iana-whois", "whois.iana.org:43", "WHOIS server that names each TLD's WHOIS server")
	return ef
}

// addRDAPFlags adds the flags of the guard and of RDAP lookups alone (a sweep asks no WHOIS).
func addRDAPFlags(fs *flag.FlagSet) *enrichFlags {
	ef := &enrichFlags{guard: addGuardFlags(fs)}
	ef.bootstrap = fs.String("rdap-bootstrap", "", "RDAP bootstrap file or URL (default: IANA's, cached for a day, with a built-in fallback)")
	ef.rate = fs.Float64("lookup-rate", 1, "requests per second to any one RDAP or WHOIS server (0: no limit)")
	ef.burst = fs.Int("lookup-burst", 3, "requests allowed at once to one server before the rate applies")
	ef.timeout = fs.Duration("lookup-timeout", 10*time.Second, "time limit of one RDAP or WHOIS request")
	return ef
}

// build makes the Enricher; cache may be nil. RDAP and WHOIS connect through guard.
func (ef *enrichFlags) build(rs *rules.RuleSet, cache enrich.RegistrationCache, guard *netguard.Guard, log func(msg string, args ...any)) (*enrich.Enricher, error) {
	servers := ef.guard.servers()
	if len(servers) == 0 {
		var err error
		if servers, err = enrich.SystemResolvers(); err != nil {
			return nil, fmt.Errorf("%w: pass --resolver HOST:PORT", err)
		}
	}
	if *ef.rate < 0 {
		return nil, usageError("--lookup-rate must not be negative")
	}
	limits := &enrich.Limits{Rate: rate.Limit(*ef.rate), Burst: *ef.burst}
	return &enrich.Enricher{
		Rules: rs,
		DNS:   &enrich.Resolver{Servers: servers, Timeout: 2 * time.Second, Retries: 2},
		RDAP:  ef.rdap(limits, guard, log),
		WHOIS: &enrich.WHOIS{Server: *ef.whoisServer, IANAServer: *ef.ianaWhois, Timeout: *ef.timeout, Limits: limits, Guard: guard},
		Cache: cache,
	}, nil
}

// rdap is the RDAP client of the flags, paced by limits and connecting through guard.
func (ef *enrichFlags) rdap(limits *enrich.Limits, guard *netguard.Guard, log func(msg string, args ...any)) *enrich.RDAP {
	cacheDir := ""
	if dir, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(dir, "helpwatch")
	}
	return &enrich.RDAP{Limits: limits, Guard: guard, Timeout: *ef.timeout, UserAgent: "helpwatch (+https://github.com/helpwatch/helpwatch)",
		BootstrapOptions: enrich.BootstrapOptions{Location: *ef.bootstrap, CacheDir: cacheDir},
		OnBootstrap: func(b *enrich.Bootstrap) {
			if log != nil {
				log("RDAP bootstrap loaded", "source", b.Source)
			}
		}}
}

func runEnrich(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("enrich", enrichUsage, stderr)
	ef := addEnrichFlags(fs)
	loadRules := addRulesFlag(fs)
	queue := fs.Bool("queue", false, "enrich the findings queued in --db and store the results")
	dbPath := dbFlag(fs, "findings database (with --queue)")
	workers := fs.Int("workers", 16, "concurrent lookups (each RDAP and WHOIS server is still paced by --lookup-rate)")
	names, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if *queue == (len(names) > 0) {
		return usageError("give names to look up, or --queue (not both)")
	}
	rs, err := loadRules.load()
	if err != nil {
		return err
	}
	ctx, stop := watchContext()
	defer stop()
	if *queue {
		// The same job runner as 'helpwatch work', on the enrichment jobs only.
		wf := &workerFlags{enrichWorkers: workers, siteWorkers: new(int), refs: new(string), render: new(bool), renderUser: new(string),
			userAgent: new(string)}
		return work(workRun{kinds: []string{jobs.Enrich.Name}, drain: true, dbPath: *dbPath, rules: loadRules,
			ef: ef, wf: wf, lines: true}, stdout, stderr)
	}
	guard, err := ef.guard.build()
	if err != nil {
		return err
	}
	e, err := ef.build(rs, nil, guard, nil)
	if err != nil {
		return err
	}
	return enrichNames(ctx, rs, e, names, *workers, stdout, stderr)
}

// enrichNames looks names up in parallel (enrich.Names) and prints the records in the order
// the names were given, each as soon as the ones before it are done. It fails when a name
// could not be scored or when every source failed for a name.
func enrichNames(ctx context.Context, rs *rules.RuleSet, e *enrich.Enricher, names []string, workers int, stdout, stderr io.Writer) error {
	enc := json.NewEncoder(output.SafeJSON(stdout))
	progress := isTerminal(stderr) && len(names) > 1
	var failed []string
	delivered, finished := 0, 0
	err := enrich.Names(ctx, rs, e, names, workers, func(r *enrich.Record, done int) error {
		finished = done
		if progress {
			fmt.Fprintf(stderr, "\renriching: %d of %d names", done, len(names))
		}
		delivered++
		if r.Score.Verdict == rules.VerdictInvalid {
			failed = append(failed, fmt.Sprintf("%s: %s", r.Name, r.Score.Error))
			return nil
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
		if enrich.Unanswered(r.Enrichment) {
			dnsReason := ""
			if len(r.Enrichment.DNS) > 0 {
				dnsReason = r.Enrichment.DNS[0].Reason
			}
			failed = append(failed, fmt.Sprintf("%s: every lookup failed (DNS: %s; registration: %s)", r.Name,
				dnsReason, r.Enrichment.Registration.Reason))
		}
		return nil
	})
	if progress {
		fmt.Fprintln(stderr)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted after %d of %d names", max(finished, delivered), len(names))
	}
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		for _, f := range failed {
			fmt.Fprintf(stderr, "helpwatch enrich: %s\n", output.Printable(f))
		}
		return fmt.Errorf("%d of %d names could not be enriched", len(failed), len(names))
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
