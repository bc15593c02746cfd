package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/abuse"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/store"
)

const abuseUsage = `usage: helpwatch abuse prepare [--since 7d] [--min-verdict alert] [--outbox DIR] [--reporter FILE]
       helpwatch abuse send --smtp HOST:PORT [--starttls] [--user U] [--dry-run] [--outbox DIR]
       helpwatch abuse status [--resolver ADDR] ...

prepare  writes one e-mail (.eml) per registrar abuse desk to the outbox: every reportable
         case (a registrable domain with its names) not reported before, what it impersonates
         and why, its certificate in CT, its registration and where it resolves, with a JSON
         attachment. Analysts' labels are obeyed: benign cases are never reported, unsure ones
         are held until decided, scam ones are reported whatever their score. Cases without a
         usable abuse contact are listed in the outbox with the reason. The sender comes from the
         reporter file (YAML: name, organization, email, phone, website, on_behalf_of; see
         docs/reporter.example.yaml).
send     sends the outbox; each message once, ever (a message the server accepted is recorded
         as sent even when the run is stopped at that moment). The SMTP password is read from
         the HELPWATCH_SMTP_PASSWORD environment variable. A message the server refuses stays in
         the outbox while the others go on; the command exits 1 and lists every failure. When the
         server cannot be reached (or refuses the session), it stops at once.
status   re-checks reported domains (NXDOMAIN, registry hold, site down) and records takedowns;
         the daily report shows the time to takedown per registrar. A domain that is dark but
         was never seen up (never resolved, no site answered) is "never-up", not a takedown.`

func runAbuse(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, abuseUsage)
		if len(args) == 0 {
			return usageError("abuse needs a subcommand: prepare, send or status")
		}
		return nil
	}
	switch args[0] {
	case "prepare":
		return abusePrepare(args[1:], stdout, stderr)
	case "send":
		return abuseSend(args[1:], stdout, stderr)
	case "status":
		return abuseStatus(args[1:], stdout, stderr)
	}
	return usageError("unknown abuse subcommand %q (prepare, send or status)", args[0])
}

// dbFlag is the --db flag of a command that reads or writes the findings database; what says
// what the command uses it for.
func dbFlag(fs *flag.FlagSet, what string) *string {
	return fs.String("db", store.DefaultPath, what+": a SQLite file or a postgres:// URL")
}

// openExistingDB opens a database a watch made; the cases whose facts the command changes are
// scored with the deployment's active rule set.
func openExistingDB(path string) (*store.SQL, error) {
	return openDB(path, dbOpen{mustExist: true})
}

// abuseNow is the clock of prepared messages; tests fix it.
var abuseNow = func() time.Time { return time.Now().UTC() }

func abusePrepare(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("abuse prepare", abuseUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	since := fs.String("since", "7d", "report cases whose first certificate is within this duration or since this date (CT time)")
	minVerdict := fs.String("min-verdict", "alert", "report cases at or above this verdict (their score now); a scam label reports any")
	outbox := fs.String("outbox", "outbox", "folder for the prepared messages")
	reporterPath := fs.String("reporter", "reporter.yaml", "reporter file: who sends the reports")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	now := abuseNow()
	from, err := parseSince(*since, now)
	if err != nil {
		return usageError("--since: %v", err)
	}
	v, err := rules.ParseVerdict(*minVerdict)
	if err != nil || v.Rank() < rules.VerdictWatch.Rank() {
		return usageError("--min-verdict %q: use alert or watch", *minVerdict)
	}
	rep, err := abuse.LoadReporter(*reporterPath)
	if err != nil {
		return err
	}
	db, err := openExistingDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := abuse.Prepare(context.Background(), db, rep, abuse.PrepareOptions{Since: from, MinVerdict: v, Outbox: *outbox, Now: now})
	if res != nil {
		for _, m := range res.Messages {
			fmt.Fprintf(stdout, "prepared %s: %d domain(s) to %s (%s)\n", m.File, len(m.Names), m.Recipient, output.Printable(m.Registrar))
		}
		if res.ListFile != "" {
			fmt.Fprintf(stdout, "%d domain(s) without a usable abuse contact, listed in %s\n", len(res.Unreportable), res.ListFile)
		}
		for _, h := range res.Held {
			fmt.Fprintf(stdout, "held %s: %s\n", output.Printable(h.Domain), h.Reason)
		}
		if len(res.Messages) == 0 && len(res.Unreportable) == 0 && len(res.Held) == 0 && err == nil {
			fmt.Fprintln(stdout, "nothing new to report")
		}
	}
	return err
}

func abuseSend(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("abuse send", abuseUsage, stderr)
	dbPath := dbFlag(fs, "findings database the messages were prepared from")
	outbox := fs.String("outbox", "outbox", "folder of prepared messages")
	smtpAddr := fs.String("smtp", "", "mail server host:port (submission is usually port 587 with --starttls)")
	startTLS := fs.Bool("starttls", false, "upgrade the connection with STARTTLS before sending")
	user := fs.String("user", "", "SMTP user (password from HELPWATCH_SMTP_PASSWORD)")
	dryRun := fs.Bool("dry-run", false, "show what would be sent; send and record nothing")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	if *smtpAddr == "" && !*dryRun {
		return usageError("--smtp HOST:PORT is required (or --dry-run)")
	}
	cfg := abuse.SMTP{Addr: *smtpAddr, StartTLS: *startTLS, User: *user, Password: os.Getenv("HELPWATCH_SMTP_PASSWORD")}
	if cfg.User != "" && cfg.Password == "" {
		return usageError("--user given but HELPWATCH_SMTP_PASSWORD is empty")
	}
	db, err := openExistingDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, stop := watchContext()
	defer stop()
	outcomes, err := abuse.Send(ctx, db, *outbox, cfg, *dryRun)
	for _, o := range outcomes {
		fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", o.Status, o.To, o.File, output.Printable(o.Subject))
	}
	if len(outcomes) == 0 && err == nil {
		fmt.Fprintf(stdout, "no messages in %s\n", *outbox)
	}
	return err
}

func abuseStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("abuse status", abuseUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	ef := addEnrichFlags(fs)
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
	rs, err := db.Rules() // the deployment's, as every command that judges a case
	if err != nil {
		return err
	}
	guard, err := ef.guard.build()
	if err != nil {
		return err
	}
	e, err := ef.build(rs, nil, guard, nil)
	if err != nil {
		return err
	}
	ctx, stop := watchContext()
	defer stop()
	checks, err := abuse.Status(ctx, db, &abuse.Checker{DNS: e.DNS, RDAP: e.RDAP, Guard: guard})
	counts := map[string]int{}
	for _, c := range checks {
		counts[c.State]++
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", c.State, output.Printable(c.Name), output.Printable(c.Detail))
	}
	var parts []string
	for _, s := range []string{store.StateLive, store.StateDark, store.StateSuspended, store.StateNeverUp, store.StateUnknown} {
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
	}
	fmt.Fprintf(stderr, "checked %d reported domain(s): %s\n", len(checks), strings.Join(parts, ", "))
	return err
}
