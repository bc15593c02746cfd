package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/netguard"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/site"
)

const siteUsage = `usage: helpwatch site check [--file PAGE --domain NAME] [URL|NAME]...
       helpwatch site check --queue [--db PATH|URL]
       helpwatch site test --scam FILE... --benign FILE... [--min-recall R] [--max-flag-rate R]

Fetches each site (https, then http; at most 5 redirects, 10 s and 2 MiB; never a private or
loopback address) or reads saved pages, and prints one JSON object per page: domain, verdict
(clone, helpline, parked, benign, unreachable), content_score (0-100), brand, phones (e164,
toll_free, source), indicators and reasons. HTML files are parsed; anything else (JSX, RST, PHP templates) is read
as text. This is how the check is evaluated offline.

Exit status: 0 every page was read and checked (whatever its verdict); 1 a saved page could
not be read; 3 a site could not be reached (no answer, TLS or HTTP failure before a page);
4 the address guard refused a site (it resolves to a private or loopback address; see
--allow-host). When several apply, the highest.

--queue checks the sites the findings database has queued (what 'helpwatch watch' does in the
background; 'helpwatch work --kinds site --drain' without waiting for enrichment), stores the
evidence and exits when nothing is due.

A live check reads the landing page and up to four pages of the same site it links to that
look like contact, support, setup, download or error pages, and judges the site as a whole:
kits spread the brand, the number, the chat and the fake error over several pages. Each page's
own verdict is kept under "pages".

site test measures the check on saved pages: the share of scam pages found clone or helpline
(recall) and of benign pages found so (flag rate), with the misses listed; exit 1 when a gate
fails. Directories are read file by file; with --site-sep the files of one saved kit (named
owner__repo__path: --site-sep __ --site-depth 2) are judged as the pages of one site too.`

func runSite(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "test" {
		return siteTest(args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(stderr, siteUsage)
		return usageError("site needs a subcommand: check or test")
	}
	fs := newFlagSet("site check", siteUsage, stderr)
	loadRules := addRulesFlag(fs)
	var files listFlag
	fs.Var(&files, "file", "saved page to check (repeatable)")
	domain := fs.String("domain", "", "the domain a saved page belongs to (default: the file name)")
	userAgent := fs.String("user-agent", site.DefaultUserAgent, "User-Agent of fetches")
	gf := addGuardFlags(fs)
	refs := fs.String("refs", "", "fingerprint library (brand reference pages and known kits; see 'helpwatch refs')")
	render := fs.Bool("render", false, "render script-built pages in headless Chromium (needs Debian's chromium)")
	queue := fs.Bool("queue", false, "check the sites queued in --db and store the results")
	dbPath := dbFlag(fs, "findings database (with --queue)")
	targets, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if *queue {
		if len(files)+len(targets) > 0 {
			return usageError("--queue takes no pages or names")
		}
		return siteQueue(*dbPath, loadRules, *refs, *render, *userAgent, gf, stdout, stderr)
	}
	lib, err := loadLibrary(*refs)
	if err != nil {
		return err
	}
	guard, err := gf.build()
	if err != nil {
		return err
	}
	if len(files)+len(targets) == 0 {
		return usageError("site check needs URLs or names to fetch, --file PAGE, or --queue")
	}
	rs, err := loadRules.load()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(output.SafeJSON(stdout))
	failed := false
	for _, f := range files {
		body, cut, err := site.ReadSaved(f)
		if err != nil {
			fmt.Fprintf(stderr, "helpwatch site check: skipping %v\n", err)
			failed = true
			continue
		}
		name := *domain
		if name == "" {
			name = filepath.Base(f)
		}
		if err := enc.Encode(site.AnalyzeFile(rs, lib, name, f, body, cut)); err != nil {
			return err
		}
	}
	fetcher := newSiteFetcher(guard)
	fetcher.UserAgent = *userAgent
	var renderer *site.Renderer
	if *render {
		renderer = &site.Renderer{}
		if !renderer.Available() {
			return site.ErrNoBrowser
		}
	}
	ctx, stop := watchContext()
	defer stop()
	var unreachable, refused []string
	for _, t := range targets {
		rep, got := site.CheckSite(ctx, rs, lib, fetcher, renderer, t)
		if err := enc.Encode(rep); err != nil {
			return err
		}
		switch {
		case errors.Is(got.Err, netguard.ErrBlocked):
			refused = append(refused, output.Printable(t))
		case got.Status == 0:
			unreachable = append(unreachable, output.Printable(t))
		}
	}
	switch {
	case len(refused) > 0:
		return &exitError{4, fmt.Errorf("refused by the address guard: %s (a private or loopback address; --allow-host lets a server of your own through)", strings.Join(refused, ", "))}
	case len(unreachable) > 0:
		return &exitError{3, fmt.Errorf("could not be reached: %s", strings.Join(unreachable, ", "))}
	case failed:
		return fmt.Errorf("some files could not be read")
	}
	return nil
}

func siteTest(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("site test", siteUsage, stderr)
	loadRules := addRulesFlag(fs)
	var scam, benign listFlag
	fs.Var(&scam, "scam", "scam page or folder of them (repeatable)")
	fs.Var(&benign, "benign", "benign page or folder of them (repeatable)")
	refs := fs.String("refs", "", "fingerprint library (brand reference pages and known kits)")
	minRecall := fs.Float64("min-recall", -1, "gate: least share of scam pages found clone or helpline")
	maxFlag := fs.Float64("max-flag-rate", -1, "gate: largest share of benign pages found clone or helpline")
	siteSep := fs.String("site-sep", "", "judge files as sites: files whose names share their first --site-depth parts split at this separator are pages of one site (a kit saved as owner__repo__path: --site-sep __ --site-depth 2); a file also counts as found when its site is")
	siteDepth := fs.Int("site-depth", 2, "how many --site-sep parts of a file name name its site")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 || len(scam)+len(benign) == 0 {
		return usageError("site test needs --scam and/or --benign pages")
	}
	lib, err := loadLibrary(*refs)
	if err != nil {
		return err
	}
	rs, err := loadRules.load()
	if err != nil {
		return err
	}
	var fails []string
	for _, set := range []struct {
		name  string
		paths []string
		scam  bool
		gate  float64
	}{{"scam", scam, true, *minRecall}, {"benign", benign, false, *maxFlag}} {
		if len(set.paths) == 0 {
			continue
		}
		files, err := site.PageFiles(set.paths)
		if err != nil {
			return err
		}
		res := site.JudgeCorpus(rs, lib, files, site.CorpusOptions{SiteSep: *siteSep, SiteDepth: *siteDepth})
		for _, err := range res.Unreadable {
			fmt.Fprintf(stderr, "skipping %v\n", err)
		}
		var wrong []string
		for _, fv := range res.Files {
			if fv.Verdict.Flagged() != set.scam {
				wrong = append(wrong, fmt.Sprintf("  %-9s %3d  %s  %s", fv.Verdict, fv.Score, output.Printable(fv.File), output.Printable(fv.Why)))
			}
		}
		total, flagged, rate, counts := len(res.Files), res.Flagged, res.Rate(), res.Counts
		fmt.Fprintf(stdout, "%s pages: %d, clone or helpline %d (%.1f%%): clone %d, helpline %d, parked %d, benign %d\n",
			set.name, total, flagged, 100*rate, counts[rules.SiteClone], counts[rules.SiteHelpline], counts[rules.SiteParked], counts[rules.SiteBenign])
		if len(wrong) > 0 {
			what := "missed"
			if !set.scam {
				what = "flagged"
			}
			fmt.Fprintf(stdout, "%s:\n%s\n", what, strings.Join(wrong, "\n"))
		}
		switch {
		case set.scam && set.gate >= 0 && rate < set.gate:
			fails = append(fails, fmt.Sprintf("scam recall %.3f < %.3f", rate, set.gate))
		case !set.scam && set.gate >= 0 && rate > set.gate:
			fails = append(fails, fmt.Sprintf("benign flag rate %.4f > %.4f", rate, set.gate))
		}
	}
	for _, f := range fails {
		fmt.Fprintf(stdout, "GATE FAILED: %s\n", f)
	}
	if len(fails) > 0 {
		return &exitError{1, fmt.Errorf("%d gate(s) failed", len(fails))}
	}
	return nil
}

// loadLibrary reads a fingerprint library; no path means none.
func loadLibrary(path string) (*site.Library, error) {
	if path == "" {
		return nil, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("--refs: %w", err)
	}
	return site.LoadLibrary(path)
}

const campaignsUsage = `usage: helpwatch campaigns [--db PATH|URL] [--format table|json]

Groups the checked sites that share a phone number, a live-chat account, a known kit or an
identical page: one of these on several domains is one operation, and reporting the domains
together gets them taken down together.`

func runCampaigns(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("campaigns", campaignsUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	format := fs.String("format", "table", "table or json")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	db, err := openExistingDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	cs, err := db.Campaigns(context.Background())
	if err != nil {
		return err
	}
	switch *format {
	case "json":
		return json.NewEncoder(output.SafeJSON(stdout)).Encode(cs)
	case "table":
		if len(cs) == 0 {
			fmt.Fprintln(stdout, "no phone number, chat account or kit is shared by two checked sites yet")
		}
		for _, c := range cs {
			kind := ""
			if c.TollFree {
				kind = " (toll-free)"
			}
			fmt.Fprintf(stdout, "%s %s%s: %d domains, %d flagged\n", c.Kind, output.Printable(c.Value), kind, len(c.Domains), c.Flagged)
			for _, d := range c.Domains {
				fmt.Fprintf(stdout, "  %s\n", output.Printable(d))
			}
		}
		return nil
	}
	return usageError("--format %q: table or json", *format)
}

// newSiteFetcher makes the site check's fetcher behind guard; tests send it to a local server.
var newSiteFetcher = func(guard *netguard.Guard) *site.Fetcher { return &site.Fetcher{Guard: guard} }

// siteQueue works through the database's site-check jobs once, with the rules --rules chose:
// 'helpwatch work --kinds site --drain', printing a line per checked name.
func siteQueue(dbPath string, loadRules rulesFlag, refs string, render bool, userAgent string, gf *guardFlags, stdout, stderr io.Writer) error {
	ef := &enrichFlags{guard: gf}
	wf := &workerFlags{enrichWorkers: new(int), siteWorkers: ptr(8), refs: &refs, render: &render, renderUser: ptr("nobody"), userAgent: &userAgent}
	return work(workRun{kinds: []string{jobs.Site.Name}, drain: true, dbPath: dbPath, rules: loadRules, ef: ef, wf: wf, lines: true}, stdout, stderr)
}
