package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/store"
)

const findingsUsage = `usage: helpwatch findings [--since 24h] [--verdict alert] [--brand hp] [--label none|scam|benign|unsure] [--order newest|points] [--format table|jsonl|csv]

Lists the stored cases, newest first or with --order points by the evidence's points before the
cap at 100 (so that more evidence ranks higher among cases that all score 100) (rows fit the terminal: the rules that scored by name;
--wide or --format jsonl for the registrar, the points and the details): a case is a registrable domain with every name of it seen
in a certificate. Each shows its score now (computed from everything known: the names, the
registration and DNS, the site check, shared phone numbers, with the rules version), its verdict,
registrar and registration date, the site verdict and the analyst's label; jsonl has every name
with its certificate and the reasons.

Dates are Certificate Transparency time: when the case's first certificate was logged (the CT
log's timestamp, or the certstream server's time). --since takes a duration (90m, 24h, 7d) or a
date (2026-11-26) and selects cases by that time; --by-read selects by when helpwatch read them
instead. --rescore FILE scores every case again with another rule file, from the same stored
facts, and shows both (nothing stored changes).`

func runFindings(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("findings", findingsUsage, stderr)
	dbPath := dbFlag(fs, "findings database written by helpwatch watch")
	since := fs.String("since", "", "only cases whose first certificate is within this duration or since this date (CT time)")
	byRead := fs.Bool("by-read", false, "--since selects by when helpwatch read the case, not by CT time")
	verdict := fs.String("verdict", "", "only this verdict: alert or watch")
	minVerdict := fs.String("min-verdict", "watch", "only cases at or above this verdict")
	brand := fs.String("brand", "", "only this brand (as the rules name it: hp, canon, ...)")
	label := fs.String("label", "", "only cases with this label: none, scam, benign or unsure")
	format := fs.String("format", "table", "output format: table, jsonl or csv")
	limit := fs.Int("limit", 0, "at most this many cases (0: all)")
	rescore := fs.String("rescore", "", "also score each case with this rule file (shown next to the stored score, not stored)")
	order := fs.String("order", "newest", "newest (first certificate in CT, newest first) or points (uncapped points, highest first)")
	wide := fs.Bool("wide", false, "table: every column (registrar, registration date, names) and the reasons in full, whatever the terminal's width")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	q := store.Query{Brand: *brand, Limit: *limit, ByReadTime: *byRead, Label: *label}
	switch *order {
	case "newest":
	case "points":
		q.ByPoints = true
	default:
		return usageError("--order %q: newest or points", *order)
	}
	switch rules.Label(*label) {
	case "", "none", rules.LabelScam, rules.LabelBenign, rules.LabelUnsure:
	default:
		return usageError("--label %q: none, scam, benign or unsure", *label)
	}
	if *since != "" {
		if q.Since, err = parseSince(*since, time.Now()); err != nil {
			return usageError("--since: %v", err)
		}
	}
	if *verdict != "" {
		if q.Verdict, err = rules.ParseVerdict(*verdict); err != nil {
			return usageError("--verdict: %v", err)
		}
	}
	if q.MinVerdict, err = rules.ParseVerdict(*minVerdict); err != nil {
		return usageError("--min-verdict: %v", err)
	}
	if q.Label != "" {
		q.MinVerdict = "" // a labeled case is listed whatever its score
	}
	w, err := output.NewCaseWriter(stdout, *format)
	if err != nil || *format == "line" {
		return usageError("--format %q: use table, jsonl or csv", *format)
	}
	if *format == "table" && !*wide {
		w = output.NewCompactCaseTable(stdout, terminalWidth(stdout), *rescore != "")
	}
	ctx := context.Background()
	db, err := openExistingDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := checkBrand(ctx, db, *brand); err != nil {
		return err
	}
	found, err := db.Cases(ctx, q)
	if err != nil {
		return err
	}
	var other *rules.RuleSet
	if *rescore != "" {
		if other, err = loadRuleArg(*rescore); err != nil {
			return err
		}
	}
	for i := range found {
		if other != nil {
			facts, err := db.CaseFacts(ctx, found[i].Registrable)
			if err != nil {
				return err
			}
			r := other.ScoreCase(facts)
			found[i].Rescored = &r
		}
		if err := w.Write(&found[i]); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(found) == 0 {
		fmt.Fprintf(stderr, "no findings match (%d stored in %s)\n", total(ctx, db), *dbPath)
	}
	return nil
}

// total is the number of cases stored, for the "no findings match" line.
func total(ctx context.Context, db *store.SQL) int {
	all, err := db.Cases(ctx, store.Query{})
	if err != nil {
		return 0
	}
	return len(all)
}

// checkBrand refuses a --brand that neither the deployment's rules nor any stored case knows,
// and lists the ones that exist: a typo must not look like "no findings".
func checkBrand(ctx context.Context, db *store.SQL, brand string) error {
	if brand == "" {
		return nil
	}
	known := map[string]string{}
	if rs, err := db.Rules(); err == nil {
		for _, b := range rs.Brands() {
			known[strings.ToLower(b)] = b
		}
	}
	stored, err := db.Brands(ctx)
	if err != nil {
		return err
	}
	for _, b := range stored {
		known[strings.ToLower(b)] = b
	}
	if _, ok := known[strings.ToLower(strings.TrimSpace(brand))]; ok {
		return nil
	}
	names := make([]string, 0, len(known))
	for _, b := range known {
		names = append(names, b)
	}
	sort.Strings(names)
	return usageError("--brand %q: no such brand (known: %s)", brand, strings.Join(names, ", "))
}

// parseSince reads "90m", "24h", "7d" or a date "2026-11-26" (UTC midnight).
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (24h, 7d) nor a date (2026-11-26)", s)
	}
	return now.Add(-d), nil
}

// parseDuration reads a Go duration or a number of days ("7d"); negative ones are refused.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of days", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration (90m, 24h, 7d)", s)
	}
	return d, nil
}

// durationFlag is a flag of parseDuration's durations.
type durationFlag struct{ d *time.Duration }

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	if *f.d != 0 && *f.d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(*f.d/(24*time.Hour))) + "d"
	}
	return f.d.String()
}

func (f durationFlag) Set(s string) error {
	d, err := parseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

func addDurationFlag(fs *flag.FlagSet, name string, def time.Duration, usage string) *time.Duration {
	d := def
	fs.Var(durationFlag{&d}, name, usage)
	return &d
}
