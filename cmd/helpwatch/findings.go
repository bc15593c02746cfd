package main

import (
	"context"
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

const findingsUsage = `usage: helpwatch findings [--since 24h] [--verdict alert] [--brand hp] [--format table|jsonl|csv]

Lists stored findings, most recently first-seen first. --rescore FILE scores them again with
another rule file and shows both (the stored findings do not change). --since takes a duration (90m, 24h, 7d)
or a date (2026-11-26); it selects findings first seen in that window.`

func runFindings(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("findings", findingsUsage, stderr)
	dbPath := fs.String("db", store.DefaultPath, "SQLite file written by helpwatch watch")
	since := fs.String("since", "", "only findings first seen within this duration or since this date")
	verdict := fs.String("verdict", "", "only this verdict: alert or watch")
	minVerdict := fs.String("min-verdict", "watch", "only findings at or above this verdict")
	brand := fs.String("brand", "", "only this brand (as the rules name it: hp, canon, ...)")
	format := fs.String("format", "table", "output format: table, jsonl or csv")
	limit := fs.Int("limit", 0, "at most this many findings (0: all)")
	rescore := fs.String("rescore", "", "also score each finding with this rule file (shown next to the stored score, not stored)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	q := store.Query{Brand: *brand, Limit: *limit}
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
	w, err := output.NewFindingWriter(stdout, *format)
	if err != nil || *format == "line" {
		return usageError("--format %q: use table, jsonl or csv", *format)
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
	found, err := db.Findings(ctx, q)
	if err != nil {
		return err
	}
	var sc *rules.Scorer
	if *rescore != "" {
		rs, err := loadRuleArg(*rescore)
		if err != nil {
			return err
		}
		sc = rs.NewScorer()
	}
	for i := range found {
		if sc != nil {
			r := sc.Score(found[i].Domain)
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

// parseSince reads "90m", "24h", "7d" or a date "2026-11-26" (UTC midnight).
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("%q is not a number of days", s)
		}
		return now.Add(-time.Duration(n) * 24 * time.Hour), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither a duration (24h, 7d) nor a date (2026-11-26)", s)
	}
	return now.Add(-d), nil
}

// total is the number of findings stored, for the "no findings match" line.
func total(ctx context.Context, db *store.SQLite) int {
	all, err := db.Findings(ctx, store.Query{})
	if err != nil {
		return 0
	}
	return len(all)
}

// checkBrand refuses a --brand that neither the default rules nor any stored finding knows, and
// lists the ones that exist: a typo must not look like "no findings".
func checkBrand(ctx context.Context, db *store.SQLite, brand string) error {
	if brand == "" {
		return nil
	}
	known := map[string]string{}
	if rs, err := rules.Default(); err == nil {
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
