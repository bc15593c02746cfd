package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/backtest"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/source"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// corpusFlags are the labeled inputs of rules test, diff and sweep.
type corpusFlags struct {
	positives, negatives, labeled, excludes listFlag
}

func (c *corpusFlags) register(fs *flag.FlagSet) {
	fs.Var(&c.positives, "positives", "file of scam names, one per line (repeatable)")
	fs.Var(&c.negatives, "negatives", "file of legitimate names, one per line (repeatable)")
	fs.Var(&c.labeled, "corpus", "labeled file: NAME scam|benign|unsure per line (repeatable)")
	fs.Var(&c.excludes, "exclude", "file of names to leave out of every corpus (repeatable)")
}

func (c *corpusFlags) empty() bool { return len(c.positives)+len(c.negatives)+len(c.labeled) == 0 }

// load reads every corpus. A labeled file becomes two corpora (its scam and its benign names);
// unsure names are left out and counted on stderr. With plainOK, a --corpus file without any
// labels is a plain name list: one unlabeled corpus (rules diff shows what changes in it).
func (c *corpusFlags) load(stderr io.Writer, plainOK bool) ([]rules.Corpus, error) {
	drop := map[string]bool{}
	for _, f := range c.excludes {
		names, err := source.ReadNameFile(f, source.NameListOptions{FirstField: true})
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			drop[strings.ToLower(n)] = true
		}
	}
	keep := func(names []string) []string {
		kept := names[:0]
		for _, n := range names {
			if !drop[strings.ToLower(n)] {
				kept = append(kept, n)
			}
		}
		return kept
	}
	var corpora []rules.Corpus
	for _, set := range []struct {
		files    []string
		positive bool
	}{{c.positives, true}, {c.negatives, false}} {
		for _, f := range set.files {
			names, err := source.ReadNameFile(f, source.NameListOptions{FirstField: true})
			if err != nil {
				return nil, err
			}
			corpora = append(corpora, rules.Corpus{Name: filepath.Base(f), Positive: set.positive, Names: keep(names)})
		}
	}
	for _, f := range c.labeled {
		lines, err := source.ReadLabeledCorpus(f)
		var cerr *source.CorpusError
		if plainOK && errors.As(err, &cerr) && cerr.PlainList() {
			names, err := source.ReadNameFile(f, source.NameListOptions{FirstField: true})
			if err != nil {
				return nil, err
			}
			corpora = append(corpora, rules.Corpus{Name: filepath.Base(f), Unlabeled: true, Names: keep(names)})
			continue
		}
		if err != nil {
			return nil, err
		}
		var scam, benign []string
		unsure := 0
		for _, l := range lines {
			switch l.Label {
			case source.LabelScam:
				scam = append(scam, l.Name)
			case source.LabelBenign:
				benign = append(benign, l.Name)
			default:
				unsure++
			}
		}
		if unsure > 0 {
			fmt.Fprintf(stderr, "%s: %d name(s) labeled unsure left out\n", f, unsure)
		}
		base := filepath.Base(f)
		if len(scam) > 0 {
			corpora = append(corpora, rules.Corpus{Name: base + " (scam)", Positive: true, Names: keep(scam)})
		}
		if len(benign) > 0 {
			corpora = append(corpora, rules.Corpus{Name: base + " (benign)", Names: keep(benign)})
		}
	}
	return corpora, nil
}

func corpusSize(cs []rules.Corpus) int {
	n := 0
	for _, c := range cs {
		n += len(c.Names)
	}
	return n
}

// progressBar reports scoring progress on a terminal and stays silent otherwise.
func progressBar(stderr io.Writer, label string, total int) (rules.Progress, func()) {
	if !isTerminal(stderr) || total < 100000 {
		return func(int) {}, func() {}
	}
	start := time.Now()
	return func(n int) {
			fmt.Fprintf(stderr, "\r%s: %d of %d names (%d%%), %s", label, n, total, 100*n/max(total, 1), time.Since(start).Round(100*time.Millisecond))
		}, func() {
			fmt.Fprintf(stderr, "\r%s: %d names in %s%s\n", label, total, time.Since(start).Round(100*time.Millisecond), strings.Repeat(" ", 20))
		}
}

// loadRuleArg loads a rule file named on the command line; "default" is the embedded one.
func loadRuleArg(arg string) (*rules.RuleSet, error) {
	if arg == "default" {
		return rules.Default()
	}
	return rules.LoadFile(arg)
}

const rulesDiffUsage = `usage: helpwatch rules diff OLD.yaml NEW.yaml --corpus FILE... [--positives F] [--negatives F] [--show N]

Scores the corpora with both rule files ("default" is the embedded one) and shows the net change
in recall (positives) and in alert and flag rate (negatives) per corpus, then every name whose
verdict or brand changes, with the reasons under each rule set. A --corpus file is either
labeled (NAME scam|benign|unsure per line) or a plain list of names (then only its changes and
rates are shown).`

func rulesDiff(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules diff", rulesDiffUsage, stderr)
	var cf corpusFlags
	cf.register(fs)
	show := fs.Int("show", 50, "names to list per corpus (0: all)")
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 2 {
		return usageError("rules diff needs OLD and NEW rule files")
	}
	if cf.empty() {
		return usageError("rules diff needs a --corpus, --positives or --negatives")
	}
	oldRS, err := loadRuleArg(files[0])
	if err != nil {
		return err
	}
	newRS, err := loadRuleArg(files[1])
	if err != nil {
		return err
	}
	corpora, err := cf.load(stderr, true)
	if err != nil {
		return err
	}
	tick, done := progressBar(stderr, "scoring with both rule sets", corpusSize(corpora))
	rep := rules.Diff(oldRS, newRS, corpora, tick)
	done()
	return output.WriteDiff(stdout, rep, files[0], files[1], *show)
}

const rulesSweepUsage = `usage: helpwatch rules sweep [--rules FILE] --positives FILE --negatives FILE [--plot out.svg] [--step N]

For every threshold from 0 to 100: the share of positives (recall) and of negatives whose score
reaches it. The table lists every --step and the rule set's own thresholds (marked); --plot
draws recall against the negative rate as an SVG with the thresholds marked.`

func rulesSweep(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules sweep", rulesSweepUsage, stderr)
	loadRules := addRulesFlag(fs)
	var cf corpusFlags
	cf.register(fs)
	plot := fs.String("plot", "", "write the curve to this SVG file")
	step := fs.Int("step", 5, "threshold step of the table")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	if *step < 1 || *step > 100 {
		return usageError("--step must be 1 to 100")
	}
	if *plot != "" && !strings.HasSuffix(strings.ToLower(*plot), ".svg") {
		return usageError("--plot %q: only SVG is written (name it .svg)", *plot)
	}
	rs, err := loadRules.load()
	if err != nil {
		return err
	}
	corpora, err := cf.load(stderr, false)
	if err != nil {
		return err
	}
	var pos, neg []string
	for _, c := range corpora {
		if c.Positive {
			pos = append(pos, c.Names...)
		} else {
			neg = append(neg, c.Names...)
		}
	}
	if len(pos) == 0 || len(neg) == 0 {
		return usageError("rules sweep needs both positives and negatives")
	}
	tick, done := progressBar(stderr, "scoring", len(pos)+len(neg))
	points := rules.Sweep(rs, pos, neg, tick)
	done()
	fmt.Fprintf(stdout, "rules %s: %d positives, %d negatives\n", rs.Version, len(pos), len(neg))
	if err := output.WriteSweep(stdout, points, rs.Alert, rs.Watch, *step); err != nil {
		return err
	}
	if *plot != "" {
		f, err := os.Create(*plot)
		if err != nil {
			return err
		}
		if err := output.SweepSVG(f, points, rs.Alert, rs.Watch, "helpwatch rules "+rs.Version+": recall against negatives"); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "curve written to %s\n", *plot)
	}
	return nil
}

const labelUsage = `usage: helpwatch label NAME... scam|benign|unsure [--note TEXT] [--by WHO]
       helpwatch label --list [--since 30d]

Records an analyst's label for the cases of the names given (a case is a registrable domain:
labeling www.x.com labels x.com), with who, when and a note; the history is kept and the latest
label counts. A case labeled benign never goes into abuse mail, an unsure one is held until
decided, a scam one is reported whatever its score; reports and 'helpwatch findings' show the
label. Labels also feed 'helpwatch rules test --from-store'. A name not seen yet keeps its
label for when it appears.`

func runLabel(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("label", labelUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	note := fs.String("note", "", "why (kept with the label)")
	by := fs.String("by", os.Getenv("USER"), "who labels (default $USER)")
	list := fs.Bool("list", false, "list the labels instead")
	since := fs.String("since", "", "with --list: only labels given within this duration or since this date")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	db, err := openExistingDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	if *list {
		var from time.Time
		if *since != "" {
			if from, err = parseSince(*since, time.Now()); err != nil {
				return usageError("--since: %v", err)
			}
		}
		labels, err := db.Labels(ctx, from)
		if err != nil {
			return err
		}
		for _, l := range labels {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\n", output.Printable(l.Registrable), l.Label, output.Printable(l.By), l.At.Format(time.RFC3339), output.Printable(l.Note))
		}
		return nil
	}
	if len(rest) < 2 {
		return usageError("label needs NAME... and scam, benign or unsure")
	}
	label, ok := source.ParseLabel(rest[len(rest)-1])
	if !ok {
		return usageError("unknown label %q (want scam, benign or unsure)", rest[len(rest)-1])
	}
	if strings.TrimSpace(*by) == "" {
		return usageError("--by is empty and $USER is not set: say who labels")
	}
	// The name's case is found with the deployment's rule set (its hosting platforms decide
	// what a registrable domain is).
	rs, err := db.Rules()
	if err != nil {
		return err
	}
	sc := rs.NewScorer()
	for _, raw := range rest[:len(rest)-1] {
		r := sc.Score(raw)
		if r.Verdict == rules.VerdictInvalid {
			return usageError("%q is not a domain name: %s", raw, r.Error)
		}
		registrable := r.Registrable
		if registrable == "" {
			registrable, _ = rules.Canonical(r.Domain)
		}
		if err := db.AddLabel(ctx, store.Label{Registrable: registrable, Label: label, Note: *note, By: *by, At: time.Now().UTC()}); err != nil {
			return err
		}
		status := ""
		if _, ok, err := db.Case(ctx, registrable); err == nil && !ok {
			status = "\t(not seen yet: the label applies when it appears)"
		}
		fmt.Fprintf(stdout, "%s\t%s%s\n", registrable, label, status)
	}
	return nil
}

// rulesTestFromStore backtests rs on the analysts' labels and on every stored finding: the
// labels give recall and false alerts, the findings give the alerts per day this rule set would
// have raised next to what was raised.
func rulesTestFromStore(rs *rules.RuleSet, dbPath, since string, stdout, stderr io.Writer) (*rules.EvalReport, error) {
	db, err := openExistingDB(dbPath)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	ctx := context.Background()
	var from time.Time
	if since != "" {
		if from, err = parseSince(since, time.Now()); err != nil {
			return nil, usageError("--since: %v", err)
		}
	}
	bt, err := backtest.Run(ctx, db, rs, from)
	if err != nil {
		return nil, err
	}
	rep := bt.Report
	fmt.Fprintf(stdout, "backtest of rules %s on %s: %d labeled scam, %d labeled benign, %d cases", rs.Version, dbName(dbPath), len(bt.Scam), len(bt.Benign), bt.Cases)
	if !from.IsZero() {
		fmt.Fprintf(stdout, " first seen since %s", from.Format(time.DateOnly))
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "\nalerts per day by CT time (stored verdicts, then this rule file):\n%-12s %14s %14s %14s %14s\n", "day", "alerts stored", "alerts now", "watch stored", "watch now")
	for _, d := range bt.Days {
		fmt.Fprintf(stdout, "%-12s %14d %14d %14d %14d\n", d.Day, d.StoredAlerts, d.NewAlerts, d.StoredWatch, d.NewWatch)
	}
	if n := len(bt.Days); n > 0 {
		fmt.Fprintf(stdout, "%-12s %14.1f %14.1f\n", "mean/day", float64(bt.StoredTotal)/float64(n), float64(bt.NewTotal)/float64(n))
	}
	fmt.Fprintln(stdout, "(the store keeps the names that were findings, at watch or above, under the rules of their day;")
	fmt.Fprintln(stdout, " names those rules ignored are not there, so a rule file that flags more is measured only on labels)")
	fmt.Fprintln(stdout)
	if len(bt.Scam)+len(bt.Benign) == 0 {
		fmt.Fprintln(stderr, "no analyst labels yet ('helpwatch label NAME scam|benign'): recall and false alerts cannot be measured")
	}
	return rep, nil
}
