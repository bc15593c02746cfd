package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/helpwatch/helpwatch/watcher/output"
)

const jobsUsage = `usage: helpwatch jobs [--db PATH|URL] [--problems 20]

The job queue by kind (enrich, site, capture, deliver): how many are due, scheduled for later
(re-checks, retries), running, done and failed, and how long the oldest due job has waited; then
the jobs whose last attempt failed, with the error and the next try ('work' retries them).`

func runJobs(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("jobs", jobsUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	problems := fs.Int("problems", 20, "list at most this many jobs whose last attempt failed")
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
	ctx := context.Background()
	now := time.Now()
	stats, err := db.JobStats(ctx, now)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "KIND\tDUE\tLATER\tRUNNING\tDONE\tFAILED\tRETRIES\tOLDEST DUE\t")
	for _, k := range stats {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", k.Kind, k.Queued, k.Scheduled, k.Running, k.Done, k.Failed, k.Retried,
			(time.Duration(k.OldestAge) * time.Second).String())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	list, err := db.JobProblems(ctx, *problems)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "\nno job failed")
		return nil
	}
	fmt.Fprintln(stdout, "\nlast attempt failed:")
	width := terminalWidth(stdout)
	for _, p := range list {
		next := "failed for good"
		if p.State == "queued" {
			next = "next try " + p.DueAt.Local().Format("01-02 15:04")
		}
		row := fmt.Sprintf("  %-8s %-32s %d attempt(s), %s: %s", p.Kind, output.Printable(p.Registrable), p.Attempts, next, output.Printable(p.LastError))
		if r := []rune(row); len(r) > width {
			row = string(r[:width-1]) + "…"
		}
		fmt.Fprintln(stdout, row)
	}
	return nil
}
