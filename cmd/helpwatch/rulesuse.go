package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/store"
)

const rulesUseUsage = `usage: helpwatch rules use FILE [--db PATH|URL]

Makes FILE the rule set of the deployment behind --db. The file is checked first (as 'rules lint'
does) and nothing changes when it has errors. Then it is recorded in the database as the active
rule set, with who made it active and when, and every stored case is rescored with it. From then
on every command that opens the database scores with it: a process started with another --rules
refuses to run, and processes already running switch to it within 10 seconds.
'helpwatch rules active' shows the active set and the history.`

func rulesUse(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules use", rulesUseUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError("rules use needs exactly one rule FILE")
	}
	rs, err := rules.LoadFile(rest[0])
	if err != nil {
		return fmt.Errorf("%v\nnothing changed: the deployment keeps its rule set", err)
	}
	ctx, stop := watchContext()
	defer stop()
	before, err := activeBefore(*dbPath)
	if err != nil {
		return err
	}
	db, err := openDB(*dbPath, dbOpen{ctx: ctx, rules: rs, activate: true, mustExist: true})
	if err != nil {
		return err
	}
	defer db.Close()
	active, err := db.ActiveRuleSet(ctx)
	if err != nil {
		return err
	}
	if before != nil && before.Seq == active.Seq {
		fmt.Fprintf(stdout, "%s (version %s) is already the active rule set of %s (made active %s by %s); nothing changed\n",
			output.Printable(rest[0]), output.Printable(rs.Version), dbName(*dbPath), active.At.Format(time.RFC3339), output.Printable(active.By))
		return nil
	}
	start := time.Now()
	lastTick := start
	n, err := db.RescoreProgress(ctx, func(done int) {
		if time.Since(lastTick) >= 2*time.Second {
			lastTick = time.Now()
			fmt.Fprintf(stderr, "rescoring: %d cases so far, %s\n", done, time.Since(start).Round(time.Second))
		}
	})
	if err != nil {
		return fmt.Errorf("%s is the active rule set now, but rescoring stopped after %d cases: %w (the rest are rescored by the next watch or work, or by running 'rules use' again)", rest[0], n, err)
	}
	prev := "none"
	if before != nil {
		prev = before.Version
	}
	fmt.Fprintf(stdout, "%s (version %s, sha256 %s) is the active rule set of %s, made active by %s; previous: %s; %d cases rescored in %s\n",
		output.Printable(rest[0]), output.Printable(rs.Version), rs.Hash[:12], dbName(*dbPath), output.Printable(active.By),
		output.Printable(prev), n, time.Since(start).Round(time.Millisecond))
	return nil
}

// activeBefore reads the active rule set before a change, so rules use can say what it replaced.
func activeBefore(path string) (*store.RuleSetRecord, error) {
	db, err := openDB(path, dbOpen{mustExist: true})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.ActiveRuleSet(context.Background())
}

func rulesActive(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rules active", "usage: helpwatch rules active [--db PATH|URL]\n\nShows the deployment's active rule set and every rule set made active before it.", stderr)
	dbPath := dbFlag(fs, "findings database")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	db, err := openExistingDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	hist, err := db.RuleSetHistory(context.Background())
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tVERSION\tSHA256\tSOURCE\tMADE ACTIVE\tBY")
	for i := len(hist) - 1; i >= 0; i-- {
		r := hist[i]
		mark := ""
		if i == len(hist)-1 {
			mark = "active"
		}
		src := r.Source
		if r.Builtin {
			src = "built in"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", mark, output.Printable(r.Version), r.Hash[:min(12, len(r.Hash))],
			output.Printable(strings.TrimSpace(src)), r.At.Format("2006-01-02 15:04 UTC"), output.Printable(r.By))
	}
	return tw.Flush()
}
