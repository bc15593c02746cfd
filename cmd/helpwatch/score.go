package main

import (
	"fmt"
	"io"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/source"
)

const scoreUsage = `usage: helpwatch score [--rules FILE] [--format jsonl|table|csv] [FILE|-]...

Scores one name per line (stdin when no file is given; blank lines and # comments are skipped)
and writes one record per name, in input order. Names that cannot be scored (too long, bad
characters, empty labels, bad punycode) get verdict "invalid" and an error; they never stop
the run.`

func runScore(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("score", scoreUsage, stderr)
	loadRules := addRulesFlag(fs)
	format := fs.String("format", "jsonl", "output format: jsonl, table or csv")
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	rs, err := loadRules()
	if err != nil {
		return err
	}
	w, err := output.NewWriter(stdout, *format)
	if err != nil {
		return usageError("%v", err)
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	sc := rs.NewScorer()
	var r rules.Result
	// A file that cannot be read is said once, when it is met, and the others are still
	// scored; the exit status says that something was missed.
	var unread []string
	for _, path := range files {
		f, err := source.OpenNameFile(path)
		if err != nil {
			unread = append(unread, path)
			fmt.Fprintf(stderr, "helpwatch score: %v\n", err)
			continue
		}
		err = source.ReadNames(f, source.NameListOptions{}, func(line int, name string, lerr error) error {
			if lerr != nil {
				r = rules.Result{Domain: name, Verdict: rules.VerdictInvalid, Error: lerr.Error(), RulesVersion: rs.Version}
			} else {
				sc.ScoreInto(name, &r)
			}
			return w.Write(&r)
		})
		f.Close()
		if err != nil {
			unread = append(unread, path)
			fmt.Fprintf(stderr, "helpwatch score: %s: %v\n", path, err)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(unread) > 0 {
		return &exitError{1, &quietError{fmt.Errorf("%d of %d input(s) could not be read", len(unread), len(files))}}
	}
	return nil
}
