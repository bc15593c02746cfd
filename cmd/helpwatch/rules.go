package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/output"
)

const rulesUsage = `usage: helpwatch rules <lint|explain|test|diff|sweep|show|use|active> ...

  lint FILE...          check rule files: unknown keys, bad points, bad regular expressions,
                        duplicate brands, tokens or keywords, each with file and line
  explain NAME...       the score of each name, rule by rule, for people
  test --positives FILE --negatives FILE [--corpus FILE] [gates]
                        measure a rule set on labeled lists; non-zero exit when a gate fails
  test --from-store [--since 30d]
                        backtest on the analysts' labels and the stored findings, with the
                        alerts per day the rule file would have raised
  diff OLD.yaml NEW.yaml --corpus FILE...
                        what changes between two rule files, name by name, and the net change
  sweep --positives FILE --negatives FILE [--plot out.svg]
                        recall and negative rate for every threshold
  show                  print the embedded default rule file (a starting point for your own)
  use FILE [--db D]     make FILE the deployment's rule set: checked first, recorded with who
                        and when, every stored case rescored with it; every process on the
                        database scores with it from then on (within 10 s for running ones)
  active [--db D]       the deployment's rule set and the history of rule sets made active`

func runRules(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, rulesUsage)
		if len(args) == 0 {
			return &exitError{2, errors.New("missing rules subcommand")}
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "lint":
		return rulesLint(args[1:], stdout, stderr)
	case "explain":
		return rulesExplain(args[1:], stdout, stderr)
	case "test":
		return rulesTest(args[1:], stdout, stderr)
	case "diff":
		return rulesDiff(args[1:], stdout, stderr)
	case "sweep":
		return rulesSweep(args[1:], stdout, stderr)
	case "show":
		_, err := stdout.Write(rules.DefaultRulesYAML())
		return err
	case "use":
		return rulesUse(args[1:], stdout, stderr)
	case "active":
		return rulesActive(args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, rulesUsage)
	return usageError("unknown rules subcommand %q", args[0])
}

func rulesLint(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules lint", "usage: helpwatch rules lint FILE...\n\nChecks rule files and reports every problem with file and line.", stderr)
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usageError("rules lint needs at least one FILE")
	}
	bad := 0
	for _, f := range files {
		rs, err := rules.LoadFile(f)
		if err != nil {
			bad++
			fmt.Fprintln(stdout, err)
			continue
		}
		fmt.Fprintf(stdout, "%s: ok (version %s, %d brands, thresholds alert %d, watch %d)\n", f, rs.Version, len(rs.Brands()), rs.Alert, rs.Watch)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d rule files have errors", bad, len(files))
	}
	return nil
}

func rulesExplain(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules explain", "usage: helpwatch rules explain [--rules FILE] NAME...\n\nShows, rule by rule, how each name is scored.", stderr)
	loadRules := addRulesFlag(fs)
	names, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return usageError("rules explain needs at least one NAME")
	}
	rs, err := loadRules.load()
	if err != nil {
		return err
	}
	sc := rs.NewScorer()
	for i, name := range names {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		r := sc.Score(name)
		fmt.Fprint(stdout, output.Explain(&r, rs.Alert, rs.Watch))
	}
	return nil
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

const rulesTestUsage = `usage: helpwatch rules test [--rules FILE] --positives FILE... --negatives FILE... [gates]

Scores labeled name lists and reports recall (flagged = alert or watch, and alert alone) on
positives, alert and flag rates on negatives, the false negatives and false positives with
their reasons, and how often each rule fired. Files hold one name per line; TSV files use the
first column. Exits 1 when a gate fails. Rates are fractions (0.97, not 97).`

func rulesTest(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules test", rulesTestUsage, stderr)
	loadRules := addRulesFlag(fs)
	var cf corpusFlags
	cf.register(fs)
	fromStore := fs.Bool("from-store", false, "backtest on the analysts' labels and the findings in --db")
	dbPath := dbFlag(fs, "findings database (with --from-store)")
	since := fs.String("since", "", "with --from-store: findings first seen within this duration or since this date")
	g := rules.NoGates
	fs.Float64Var(&g.MinRecall, "min-recall", -1, "gate: least share of positives flagged (alert or watch)")
	fs.Float64Var(&g.MinAlertRecall, "min-alert-recall", -1, "gate: least share of positives at alert")
	fs.Float64Var(&g.MaxAlertRate, "max-alert-rate", -1, "gate: largest share of negatives at alert")
	fs.Float64Var(&g.MaxFlagRate, "max-flag-rate", -1, "gate: largest share of negatives flagged")
	show := fs.Int("show", 25, "how many false negatives/positives to list per corpus")
	quiet := fs.Bool("quiet", false, "print only the summary table and the gates")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q (corpora are given with --positives, --negatives and --corpus)", rest[0])
	}
	if cf.empty() == !*fromStore {
		return usageError("rules test needs --positives, --negatives or --corpus, or --from-store (not both)")
	}
	rs, err := loadRules.load()
	if err != nil {
		return err
	}
	var rep *rules.EvalReport
	if *fromStore {
		if rep, err = rulesTestFromStore(rs, *dbPath, *since, stdout, stderr); err != nil {
			return err
		}
	} else {
		corpora, err := cf.load(stderr, false)
		if err != nil {
			return err
		}
		tick, done := progressBar(stderr, "scoring", corpusSize(corpora))
		rep = rules.Evaluate(rs, corpora, tick)
		done()
	}
	output.WriteEvalReport(stdout, rep, *show, *quiet, g.MinAlertRecall >= 0)
	fails := rep.Check(g)
	for _, f := range fails {
		fmt.Fprintf(stdout, "GATE FAILED: %s\n", f)
	}
	if len(fails) > 0 {
		return &exitError{1, fmt.Errorf("%d gate(s) failed", len(fails))}
	}
	if g != rules.NoGates {
		fmt.Fprintln(stdout, "all gates passed")
	}
	return nil
}
