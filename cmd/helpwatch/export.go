package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/export"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/store"
)

const exportUsage = `usage: helpwatch export --format misp|stix|csv [--since 7d] [--min-verdict alert] [--label scam] [--brand hp] [--out FILE] [--tlp amber] [--push MISP-URL]

Writes the stored cases in the formats security teams share threat data in:
  misp  one MISP event per case ({"response": [...]}, as MISP's search gives them) with the
        standard objects: domain-ip, phishing (the screenshot attached when a capture took
        one), x509 (the certificate from CT), whois (the registration), phone (the numbers the
        site showed); tags for the TLP, brand, verdict, site verdict and label.
  stix  a STIX 2.1 bundle: an identity per brand, and per case an indicator (a pattern on the
        domain name, valid from its first certificate, confidence from the score) based on an
        observed-data that refers to the domain-name, ipv4-addr, x509-certificate and url
        objects and the screenshot as an artifact.
  csv   the findings' CSV (every column, formula-safe).
Ids are derived from the case, so a second export (or push) updates what the first made.

--push URL sends the MISP events to a MISP instance's REST API (events/add, or events/edit
when it has the event), with the key from HELPWATCH_MISP_KEY, through the address guard.`

func runExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", exportUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	format := fs.String("format", "", "misp, stix or csv")
	since := fs.String("since", "", "only cases whose first certificate is within this duration or since this date (CT time)")
	minVerdict := fs.String("min-verdict", "alert", "only cases at or above this verdict (watch, alert)")
	label := fs.String("label", "", "only cases with this label: none, scam, benign or unsure (then whatever their verdict)")
	brand := fs.String("brand", "", "only this brand")
	out := fs.String("out", "", "write to this file (readable by its owner only) instead of standard output")
	tlp := fs.String("tlp", "amber", "Traffic Light Protocol marking: clear, green, amber or red")
	consoleURL := fs.String("console-url", "", "the console's address, for links to each case")
	shots := fs.Bool("screenshots", true, "stix: embed the latest screenshot as an artifact (misp always attaches it)")
	push := fs.String("push", "", "misp: also send the events to this MISP instance (https://misp.example.org), key from HELPWATCH_MISP_KEY")
	gf := addGuardFlags(fs)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	if *format != "misp" && *format != "stix" && *format != "csv" {
		return usageError("--format %q: misp, stix or csv", *format)
	}
	if !slices.Contains(export.TLPNames, *tlp) {
		return usageError("--tlp %q: %s", *tlp, strings.Join(export.TLPNames, ", "))
	}
	key := os.Getenv("HELPWATCH_MISP_KEY")
	if *push != "" {
		if *format != "misp" {
			return usageError("--push sends MISP events: use it with --format misp")
		}
		if key == "" {
			return usageError("--push: %v", export.ErrNoKey)
		}
	}
	q := store.Query{Brand: *brand, Label: *label}
	if q.MinVerdict, err = rules.ParseVerdict(*minVerdict); err != nil {
		return usageError("--min-verdict: %v", err)
	}
	switch rules.Label(*label) {
	case "":
	case "none", rules.LabelScam, rules.LabelBenign, rules.LabelUnsure:
		q.MinVerdict = ""
	default:
		return usageError("--label %q: none, scam, benign or unsure", *label)
	}
	if *since != "" {
		if q.Since, err = parseSince(*since, time.Now()); err != nil {
			return usageError("--since: %v", err)
		}
	}
	db, err := openExistingDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, stop := watchContext()
	defer stop()
	items, err := export.Gather(ctx, db, q)
	if err != nil {
		return err
	}
	base := strings.TrimRight(*consoleURL, "/")
	write := func(w io.Writer) error {
		switch *format {
		case "misp":
			return export.WriteMISP(w, items, export.MISPOptions{TLP: *tlp, ConsoleURL: base})
		case "stix":
			return export.WriteSTIX(w, items, export.STIXOptions{TLP: *tlp, ConsoleURL: base, Screenshots: *shots})
		}
		cw, err := output.NewCaseWriter(w, "csv")
		if err != nil {
			return err
		}
		for i := range items {
			if err := cw.Write(&items[i].Case); err != nil {
				return err
			}
		}
		return cw.Flush()
	}
	if *out == "" {
		if err := write(stdout); err != nil {
			return err
		}
	} else {
		if err := writeFileAtomic(*out, 0o600, write); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "exported %d case(s) as %s to %s\n", len(items), *format, *out)
	}
	if *push != "" {
		guard, err := gf.build()
		if err != nil {
			return err
		}
		events := make([]export.MISPEvent, len(items))
		for i := range items {
			events[i] = export.NewMISPEvent(&items[i], export.MISPOptions{TLP: *tlp, ConsoleURL: base})
		}
		added, updated, err := export.PushMISP(ctx, guard.HTTPClient(60*time.Second, 0), *push, key, events)
		fmt.Fprintf(stderr, "MISP %s: %d event(s) added, %d updated\n", output.Printable(*push), added, updated)
		if err != nil {
			return fmt.Errorf("--push: %w", err)
		}
	}
	if len(items) == 0 {
		fmt.Fprintln(stderr, "no cases match (see --min-verdict, --since, --label)")
	}
	return nil
}

// writeFileAtomic writes path through a temporary file beside it and a rename, so that a
// reader never sees half a file and a failure leaves the old one.
func writeFileAtomic(path string, perm os.FileMode, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	file, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if err := write(file); err != nil {
		file.Close()
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := file.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
