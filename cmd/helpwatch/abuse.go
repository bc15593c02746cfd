package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher/abuse"
	"github.com/helpwatch/helpwatch/watcher/capture"
	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/site"
	"github.com/helpwatch/helpwatch/watcher/store"
)

const abuseUsage = `usage: helpwatch abuse prepare [--since 7d] [--to registrar,hosting,netcraft,safebrowsing] [--outbox DIR] [--reporter FILE] [--approve-above SCORE] [--action-days 2]
       helpwatch abuse approve ID... [--note TEXT]
       helpwatch abuse send --smtp HOST:PORT [--starttls] [--user U] [--dry-run]
       helpwatch abuse ack ID --state acknowledged|refused|actioned|sent|withdrawn [--note TEXT]
       helpwatch abuse status [--resolver ADDR] [--action-days 2] ...

prepare  drafts a report per destination for every case whose stored capture shows a clone or
         helpline page, or that an analyst labelled scam (the note is the stated reason): the
         registrar's and the hosting provider's abuse desks (one e-mail each, subject
         "Phishing - example[.]com - Reported by ORG", defanged URLs, the brand and its real
         site, first and last observed in UTC, the numbers shown, the registration; the
         screenshots and an X-ARF v4 document attached), Netcraft's report API, and a Safe
         Browsing packet to paste by hand. Drafts are written to the outbox to be read; cases
         without observed abuse are listed there as not reportable yet, with the reason. Labels
         are obeyed: benign cases are never reported, unsure ones are held. It also drafts the
         follow-ups that are due (no action within --action-days business days) and, for gTLD
         registrars that did not act on a follow-up either, an ICANN Compliance complaint packet.
         The sender comes from the reporter file (docs/reporter.example.yaml).
approve  approves drafts by ID (abuse status lists them): nothing is sent before. With
         --approve-above, prepare approves at once the drafts of cases scoring at least SCORE
         whose capture shows a clone or helpline page.
send     delivers the approved reports, each exactly once (mail over SMTP, Netcraft over HTTPS
         through the address guard); a failure is retried with backoff on the next run. The
         SMTP password is read from HELPWATCH_SMTP_PASSWORD.
ack      records a desk's answer (acknowledged, refused, actioned) or a packet submitted by hand
         (sent); withdrawn drops a draft.
status   re-checks reported domains (NXDOMAIN, registry hold, site down, or cleared: the site
         answers but no visitor profile is shown the scam page): a takedown moves their
         reports to actioned. Then prints every report's ladder and what is due. A domain dark
         but never seen up is "never-up", not a takedown.`

func runAbuse(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, abuseUsage)
		if len(args) == 0 {
			return usageError("abuse needs a subcommand: prepare, approve, send, ack or status")
		}
		return nil
	}
	switch args[0] {
	case "prepare":
		return abusePrepare(args[1:], stdout, stderr)
	case "approve":
		return abuseApprove(args[1:], stdout, stderr)
	case "send":
		return abuseSend(args[1:], stdout, stderr)
	case "ack":
		return abuseAck(args[1:], stdout, stderr)
	case "status":
		return abuseStatus(args[1:], stdout, stderr)
	}
	return usageError("unknown abuse subcommand %q (prepare, approve, send, ack or status)", args[0])
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
	dests := fs.String("to", strings.Join(abuse.AllDestinations, ","), "destinations: registrar, hosting, netcraft, safebrowsing")
	outbox := fs.String("outbox", "outbox", "folder for the drafts")
	reporterPath := fs.String("reporter", "reporter.yaml", "reporter file: who sends the reports")
	approveAbove := fs.Int("approve-above", 0, "approve at once the drafts of cases scoring at least this whose capture shows a clone or helpline page (0: none)")
	actionDays := fs.Int("action-days", abuse.DefaultActionDays, "business days a desk has to act before a follow-up is due")
	netcraftURL := fs.String("netcraft-url", abuse.NetcraftReportURL, "Netcraft's report API")
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
	var to []string
	for _, d := range strings.Split(*dests, ",") {
		d = strings.TrimSpace(d)
		if !slices.Contains(abuse.AllDestinations, d) {
			return usageError("--to %q: the destinations are %s", d, strings.Join(abuse.AllDestinations, ", "))
		}
		to = append(to, d)
	}
	if *actionDays < 1 {
		return usageError("--action-days %d: at least 1", *actionDays)
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
	rs, err := db.Rules()
	if err != nil {
		return err
	}
	ctx := context.Background()
	res, err := abuse.Prepare(ctx, db, rep, abuse.PrepareOptions{Since: from, Destinations: to, Outbox: *outbox, Now: now,
		ApproveAbove: *approveAbove, Actor: actor(), Rules: rs, NetcraftURL: *netcraftURL})
	if res != nil {
		for _, m := range res.Messages {
			fmt.Fprintf(stdout, "drafted #%d %s to %s %s (%s): %s\n", m.ID, strings.Join(m.Names, ","), m.Destination,
				output.Printable(m.Recipient), output.Printable(m.Registrar), m.File)
		}
		for _, m := range res.Approved {
			fmt.Fprintf(stdout, "approved #%d (score at or above %d, abuse captured)\n", m.ID, *approveAbove)
		}
		for _, u := range res.NotYet {
			fmt.Fprintf(stdout, "not reportable yet %s: %s\n", output.Printable(u.Domain), output.Printable(u.Reason))
		}
		for _, u := range res.Unreportable {
			fmt.Fprintf(stdout, "not to %s %s: %s\n", u.Destination, output.Printable(u.Domain), output.Printable(u.Reason))
		}
		for _, h := range res.Held {
			fmt.Fprintf(stdout, "held %s: %s\n", output.Printable(h.Domain), h.Reason)
		}
		if res.ListFile != "" {
			fmt.Fprintf(stdout, "what was not reported is listed in %s\n", res.ListFile)
		}
	}
	if err != nil {
		return err
	}
	follow, err := abuse.FollowUps(ctx, db, rep, *outbox, *actionDays, actor(), now)
	for _, f := range follow {
		fmt.Fprintf(stdout, "drafted #%d %s of #%d to %s: %s\n", f.ID, f.Kind, f.FollowUpOf, output.Printable(f.Recipient), f.File)
	}
	if err == nil && len(res.Messages)+len(res.NotYet)+len(res.Unreportable)+len(res.Held)+len(follow) == 0 {
		fmt.Fprintln(stdout, "nothing new to report")
	}
	if err == nil && len(res.Messages)+len(follow) > len(res.Approved) {
		fmt.Fprintln(stdout, "read the drafts, then: helpwatch abuse approve ID... and helpwatch abuse send")
	}
	return err
}

// parseIDs reads report numbers ("12" or "#12").
func parseIDs(args []string) ([]int64, error) {
	var ids []int64
	for _, a := range args {
		id, err := strconv.ParseInt(strings.TrimPrefix(a, "#"), 10, 64)
		if err != nil || id <= 0 {
			return nil, usageError("%q is not a report number (abuse status lists them)", a)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func abuseApprove(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("abuse approve", abuseUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	note := fs.String("note", "", "why (kept with the approval)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	ids, err := parseIDs(rest)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return usageError("approve needs report numbers (abuse status lists them)")
	}
	db, err := openExistingDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := abuse.Approve(context.Background(), db, ids, actor(), *note, abuseNow()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "approved %d report(s); 'helpwatch abuse send' delivers them\n", len(ids))
	return nil
}

func abuseAck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("abuse ack", abuseUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	state := fs.String("state", store.ReportAcknowledged, "the answer: "+strings.Join(abuse.AckStates, ", "))
	note := fs.String("note", "", "what the desk said (kept with the step)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	ids, err := parseIDs(rest)
	if err != nil {
		return err
	}
	if len(ids) != 1 {
		return usageError("ack needs one report number")
	}
	db, err := openExistingDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := abuse.Ack(context.Background(), db, ids[0], *state, actor(), *note, abuseNow()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report #%d is %s\n", ids[0], *state)
	return nil
}

func abuseSend(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("abuse send", abuseUsage, stderr)
	dbPath := dbFlag(fs, "findings database the reports were prepared in")
	smtpAddr := fs.String("smtp", "", "mail server host:port (submission is usually port 587 with --starttls)")
	startTLS := fs.Bool("starttls", false, "upgrade the connection with STARTTLS before sending")
	user := fs.String("user", "", "SMTP user (password from HELPWATCH_SMTP_PASSWORD)")
	dryRun := fs.Bool("dry-run", false, "list what would be delivered; send and record nothing")
	gf := addGuardFlags(fs)
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
	ctx, stop := watchContext()
	defer stop()
	if *dryRun {
		all, err := db.AbuseReports(ctx, 0)
		if err != nil {
			return err
		}
		n := 0
		for _, r := range all {
			if r.State == store.ReportApproved && abuse.Delivered(r.Destination) {
				n++
				fmt.Fprintf(stdout, "would send #%d %s to %s %s\n", r.ID, strings.Join(r.Names, ","), r.Destination, output.Printable(r.Recipient))
			}
		}
		if n == 0 {
			fmt.Fprintln(stdout, "no approved reports to send")
		}
		return nil
	}
	if *smtpAddr == "" {
		return usageError("--smtp HOST:PORT is required (or --dry-run)")
	}
	cfg := abuse.SMTP{Addr: *smtpAddr, StartTLS: *startTLS, User: *user, Password: os.Getenv("HELPWATCH_SMTP_PASSWORD")}
	if cfg.User != "" && cfg.Password == "" {
		return usageError("--user given but HELPWATCH_SMTP_PASSWORD is empty")
	}
	guard, err := gf.build()
	if err != nil {
		return err
	}
	mailer := &abuse.Mail{SMTP: cfg}
	out := &lockedWriter{w: stdout}
	d := &abuse.Deliverer{Store: db, Destinations: map[string]abuse.Destination{
		store.DestRegistrar: mailer, store.DestHosting: mailer, store.DestNetcraft: &abuse.ReportAPI{Client: guard.HTTPClient(30*time.Second, 3)}},
		Delivered: func(r *store.AbuseReport, reply string) {
			out.printf("sent #%d %s to %s %s: %s\n", r.ID, strings.Join(r.Names, ","), r.Destination, output.Printable(r.Recipient), output.Printable(reply))
		}}
	log := newLogger(stderr)
	runner := &queue.Runner{Store: db, Drain: true, Log: log, Kinds: []queue.Kind{d.Kind(0)}}
	if err := runner.Run(ctx); err != nil {
		return err
	}
	c := runner.Counters(jobs.Deliver.Name)
	if n := c.Retried.Load() + c.Failed.Load(); n > 0 {
		return fmt.Errorf("%d report(s) not delivered (retried later: see 'helpwatch jobs' and the log above)", n)
	}
	return nil
}

func abuseStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("abuse status", abuseUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	actionDays := fs.Int("action-days", abuse.DefaultActionDays, "business days a desk has to act before a follow-up is due")
	renderUser := fs.String("render-user", "nobody", "user that runs Chromium when helpwatch runs as root (its sandbox refuses root)")
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
	// A name that answers is looked at as every capture profile: a site that no longer shows
	// its scam page to anyone was cleared by its host. Screenshots are not needed for that,
	// but a script-built kit is only seen in a browser.
	looker := &capture.Capturer{Rules: rs, Fetcher: newSiteFetcher(guard)}
	if r := (&site.Renderer{User: *renderUser}); r.Available() {
		looker.Renderer = r
		defer r.Close()
	}
	checks, err := abuse.Status(ctx, db, &abuse.Checker{DNS: e.DNS, RDAP: e.RDAP, Guard: guard, Gone: looker.Gone})
	counts := map[string]int{}
	for _, c := range checks {
		counts[c.State]++
		fmt.Fprintf(stdout, "%s\t%s\t%s\n", c.State, output.Printable(c.Name), output.Printable(c.Detail))
	}
	var parts []string
	for _, s := range []string{store.StateLive, store.StateDark, store.StateSuspended, store.StateCleared, store.StateNeverUp, store.StateUnknown} {
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
	}
	fmt.Fprintf(stderr, "checked %d reported domain(s): %s\n", len(checks), strings.Join(parts, ", "))
	if err != nil {
		return err
	}
	rungs, err := abuse.Ladder(ctx, db, *actionDays, abuseNow())
	if err != nil {
		return err
	}
	for _, g := range rungs {
		r := g.Report
		if r.State == store.ReportWithdrawn {
			continue
		}
		var steps []string
		for _, e := range g.Events {
			steps = append(steps, e.State+" "+e.At.UTC().Format("01-02 15:04")+" "+output.Printable(e.Actor))
		}
		due := ""
		if g.Due != "" {
			due = "\t" + g.Due + " due"
		} else if !g.DueAt.IsZero() {
			due = "\tfollow-up due " + g.DueAt.UTC().Format(time.DateOnly)
		}
		fmt.Fprintf(stdout, "#%d\t%s\t%s %s\t%s\t%s%s\n", r.ID, strings.Join(r.Names, ","), r.Kind, r.Destination, output.Printable(r.Registrar),
			strings.Join(steps, " > "), due)
	}
	return nil
}
