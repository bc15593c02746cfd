package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher/report"
)

const reportUsage = `usage: helpwatch report [--since 24h | --date 2026-11-26] [--brand hp] [--format html|md|csv|json] [--out FILE]

The daily domain report: per brand, the new cases (a registrable domain with its names) at alert
or watch, with their score now, the reasons in words, registrar, registration date, addresses,
phone numbers and clone score where known, the analyst's label (benign ones are listed, marked,
and not counted as alerts), first seen and the certificate; what changed since the previous
report (still live, went dark or suspended, came back); alerts per day over 30 days; and time to
takedown per registrar.

Dates are Certificate Transparency time: a case belongs to the day its first certificate was
logged (--date 2026-11-26 is that UTC day; --since 24h the last 24 hours of it), whenever
helpwatch read it.

HTML is one self-contained file (no scripts, no remote assets). The format follows --out's
extension when --format is not given, and is Markdown on standard output. Each report is
remembered so that the next one can say what changed (--no-record for a preview).`

// reportNow is the report's clock; tests fix it.
var reportNow = func() time.Time { return time.Now().UTC() }

func runReport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("report", reportUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	since := fs.String("since", "24h", "report cases whose first certificate is within this duration (24h, 7d; CT time)")
	day := fs.String("date", "", "report the cases whose first certificate was logged on this UTC day (2026-11-26) instead of --since")
	brand := fs.String("brand", "", "only this brand")
	format := fs.String("format", "", "html, md, csv or json (default: from --out, else md)")
	out := fs.String("out", "", "write to this file instead of standard output")
	noRecord := fs.Bool("no-record", false, "do not remember this report (the next one compares with the one before)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	if *day != "" && flagSet(fs, "since") {
		return usageError("--date and --since both choose the period: give one of them")
	}
	now := reportNow()
	opts := report.Options{Brand: *brand, Now: now, Record: !*noRecord, To: now}
	if *day != "" {
		d, err := time.Parse(time.DateOnly, *day)
		if err != nil {
			return usageError("--date %q: want YYYY-MM-DD", *day)
		}
		opts.From, opts.To = d, d.AddDate(0, 0, 1)
	} else if opts.From, err = parseSince(*since, now); err != nil {
		return usageError("--since: %v", err)
	}
	f := *format
	if f == "" {
		switch strings.ToLower(filepath.Ext(*out)) {
		case ".html", ".htm":
			f = "html"
		case ".csv":
			f = "csv"
		case ".json":
			f = "json"
		default:
			f = "md"
		}
	}
	known := false
	for _, k := range report.Formats {
		known = known || k == f
	}
	if !known {
		return usageError("--format %q: use %s", f, strings.Join(report.Formats, ", "))
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
	rep, err := report.Build(ctx, db, opts)
	if err != nil {
		return err
	}
	if *out == "" {
		return report.Write(stdout, rep, f)
	}
	if err := writeFileAtomic(*out, 0o644, func(w io.Writer) error { return report.Write(w, rep, f) }); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "report written to %s: %d new, %d alerts, %d watch\n", *out, rep.Summary.New, rep.Summary.Alerts, rep.Summary.Watch)
	return nil
}
