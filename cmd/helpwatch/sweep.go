package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/pipeline"
	"github.com/helpwatch/helpwatch/watcher/source"
	"github.com/helpwatch/helpwatch/watcher/sweep"
)

const sweepUsage = `usage: helpwatch sweep [--brands hp,canon] [--kinds omission,helpline,...] [--tlds com,net] [--max 20000] [--rate 20] [--rdap-max 2000] [--every 24h] [--db PATH|URL]

Finds the look-alikes of the brands that exist although they never got a certificate (served
over plain HTTP, or registered and not live yet). Candidates are made from the catalog: typos
of each brand (omission, repetition, transposition, replacement, insertion, vowel-swap),
ASCII look-alikes (homoglyph), hyphenation, the brand with helpline, setup and problem words
(helpline), the brand alone under other TLDs (tld-swap); helpline and tld-swap names under
com, net and the first six abused TLDs of the rules, typos under com, unless --tlds says.
Each is remembered; DNS is asked (NS, then A, --rate questions a second) which exist, then the
registry's RDAP about up to --rdap-max names DNS does not know (a domain registered but not
delegated, or on hold, has no DNS; each RDAP server is paced by --lookup-rate). The ones that
exist are scored and stored as cases like a certificate's names (then enriched and checked by
'work'). The ones that do not exist are asked again after --recheck (a day), so a sweep run
daily (or --every 24h) notices a registration within a day.`

func runSweep(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sweep", sweepUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	brands := fs.String("brands", "", "only these brands (comma-separated, as the rules name them; default all)")
	kinds := fs.String("kinds", "", "only these kinds of look-alike (comma-separated: "+strings.Join(rules.LookAlikeKinds, ", ")+")")
	tlds := fs.String("tlds", "", "the TLDs tried (comma-separated; typos under the first; default com, net and the first six abused TLDs)")
	maxNames := fs.Int("max", 200000, "at most this many candidates, and names asked about per sweep (two DNS questions at most each: 200,000 take under 6 hours at --rate 20)")
	qps := fs.Float64("rate", 20, "DNS questions per second")
	recheck := fs.Duration("recheck", 24*time.Hour, "ask again about a name that did not exist after this long")
	every := fs.Duration("every", 0, "sweep again after this long, until stopped (0: once)")
	dryRun := fs.Bool("dry-run", false, "print the candidates and their counts per kind; ask and store nothing")
	rdapMax := fs.Int("rdap-max", 2000, "ask the registry (RDAP) about at most this many names per sweep that DNS does not know (registered but not delegated, or on hold); 0: never")
	ef := addRDAPFlags(fs)
	gf := ef.guard
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	opts := rules.LookAlikeOptions{Brands: splitList(*brands), Kinds: splitList(*kinds), TLDs: splitList(*tlds), Max: *maxNames}
	for _, k := range opts.Kinds {
		if !slices.Contains(rules.LookAlikeKinds, k) {
			return usageError("--kinds %q: the kinds are %s", k, strings.Join(rules.LookAlikeKinds, ", "))
		}
	}
	db, err := openDB(*dbPath, dbOpen{})
	if err != nil {
		return err
	}
	defer db.Close()
	rs, err := db.Rules()
	if err != nil {
		return err
	}
	for _, b := range opts.Brands {
		if !containsFold(rs.Brands(), b) {
			return usageError("--brands %q: not a brand of the rules (%s)", b, strings.Join(rs.Brands()[:min(8, len(rs.Brands()))], ", ")+", ...")
		}
	}
	candidates, counts := rs.LookAlikes(opts)
	var line []string
	for _, k := range rules.LookAlikeKinds {
		if counts[k] > 0 {
			line = append(line, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	fmt.Fprintf(stderr, "%d candidates: %s\n", len(candidates), strings.Join(line, ", "))
	if *dryRun {
		for _, c := range candidates {
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", c.Domain, c.Brand, c.Kind)
		}
		return nil
	}
	servers := gf.servers()
	if len(servers) == 0 {
		if servers, err = enrich.SystemResolvers(); err != nil {
			return fmt.Errorf("%w: pass --resolver HOST:PORT", err)
		}
	}
	if *rdapMax < 0 || *ef.rate < 0 {
		return usageError("--rdap-max and --lookup-rate must not be negative")
	}
	log := newLogger(stderr)
	var registry sweep.Registry
	if *rdapMax > 0 {
		guard, err := gf.build()
		if err != nil {
			return err
		}
		registry = ef.rdap(&enrich.Limits{Rate: rate.Limit(*ef.rate), Burst: *ef.burst}, guard, log.Info)
	}
	ctx, stop := watchContext()
	defer stop()
	for {
		start := time.Now()
		lastSaid := time.Now()
		res, err := sweep.Run(ctx, sweep.Config{Store: db, Resolver: &enrich.Resolver{Servers: servers, Timeout: 2 * time.Second, Retries: 1},
			Rate: *qps, Recheck: *recheck, Limit: *maxNames, Registry: registry, RegistryMax: *rdapMax,
			Progress: func(done, total int) {
				if time.Since(lastSaid) > 10*time.Second {
					lastSaid = time.Now()
					log.Info("sweep progress", "asked", done, "of", total)
				}
			}}, candidates)
		if res != nil {
			log.Info("sweep done", "new_candidates", res.Added, "asked", res.Asked, "exist", len(res.Found), "absent", res.Absent,
				"no_answer", res.Unknown, "registry_asked", res.RegistryAsked, "registered_not_in_dns", res.Registered, "elapsed", time.Since(start).Round(time.Second))
			if len(res.Found) > 0 {
				if perr := pipeline.Run(ctx, &sweep.Source{Names: res.Found}, pipeline.Config{Rules: rs, Store: db, Log: log}); perr != nil && ctx.Err() == nil {
					return perr
				}
				for _, f := range res.Found {
					fmt.Fprintf(stdout, "exists\t%s\t%s\t%s\n", f.Domain, f.Brand, f.Kind)
				}
			}
		}
		if err != nil || *every <= 0 {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if source.Sleep(ctx, *every) != nil {
			return nil
		}
	}
}

func containsFold(list []string, v string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.EqualFold(s, v) })
}
