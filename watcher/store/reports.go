package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
)

// Liveness states of a reported or listed domain.
const (
	StateLive      = "live"
	StateDark      = "dark"      // the name no longer resolves, or the registration is gone
	StateSuspended = "suspended" // the registry or registrar put it on hold
	// StateCleared: the site still answers, but no visitor profile is shown the scam page any
	// more (blank, parked, an error page): its host took the content down.
	StateCleared = "cleared"
	StateUnknown = "unknown"
	// StateNeverUp: dark now, and never seen up (no live check, no site that answered, no
	// address when enriched): nothing was taken down.
	StateNeverUp = "never-up"
)

// Check is one liveness check of a name.
type Check struct {
	Name   string
	At     time.Time
	State  string
	Detail string
}

// RecordCheck keeps one liveness check.
func (s *SQL) RecordCheck(ctx context.Context, c Check) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO domain_checks (name, checked_at, state, detail) VALUES ($1,$2,$3,$4)
		ON CONFLICT (name, checked_at) DO UPDATE SET state = excluded.state, detail = excluded.detail`, c.Name, c.At.UnixMilli(), c.State, c.Detail)
	return err
}

// SeenUp reports whether a case was ever seen up: a live check, a site check that got an HTTP
// answer, or an address in its enrichment.
func (s *SQL) SeenUp(ctx context.Context, registrable string) (bool, error) {
	var live, answered int
	var enrichment string
	err := s.read.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM domain_checks WHERE name = $1 AND state = 'live'),
		(SELECT COUNT(*) FROM site_checks sc JOIN cases c ON c.id = sc.case_id WHERE c.registrable = $1 AND sc.status > 0),
		COALESCE((SELECT enrichment FROM cases WHERE registrable = $1), '')`, registrable).Scan(&live, &answered, &enrichment)
	if err != nil {
		return false, fmt.Errorf("%s: %w", s.path, err)
	}
	if live > 0 || answered > 0 {
		return true, nil
	}
	if enrichment != "" {
		var en watcher.Enrichment
		if json.Unmarshal([]byte(enrichment), &en) == nil {
			for _, d := range en.DNS {
				if len(d.A)+len(d.AAAA)+len(d.CNAME) > 0 {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// LatestChecks returns the newest check of each name that has one, at or before at.
func (s *SQL) LatestChecks(ctx context.Context, at time.Time) (map[string]Check, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT c.name, c.checked_at, c.state, c.detail FROM domain_checks c
		JOIN (SELECT name, MAX(checked_at) AS last FROM domain_checks WHERE checked_at <= $1 GROUP BY name) l
		ON c.name = l.name AND c.checked_at = l.last`, at.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Check{}
	for rows.Next() {
		var c Check
		var ms int64
		if err := rows.Scan(&c.Name, &ms, &c.State, &c.Detail); err != nil {
			return nil, err
		}
		c.At = fromMillis(ms)
		out[c.Name] = c
	}
	return out, rows.Err()
}

// ReportRun is one daily report that was produced, and the state of each domain it listed.
type ReportRun struct {
	ID       int64
	At       time.Time
	From, To time.Time
	Brand    string
	States   map[string]string
}

// RecordReportRun keeps what a report listed, so the next one can say what changed.
func (s *SQL) RecordReportRun(ctx context.Context, run *ReportRun) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `INSERT INTO report_runs (at, period_from, period_to, brand) VALUES ($1,$2,$3,$4) RETURNING id`,
		run.At.UnixMilli(), run.From.UnixMilli(), run.To.UnixMilli(), strings.ToLower(run.Brand)).Scan(&run.ID); err != nil {
		return err
	}
	for name, state := range run.States {
		if _, err := tx.ExecContext(ctx, `INSERT INTO report_items (run_id, name, state) VALUES ($1,$2,$3)`, run.ID, name, state); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// PreviousReportRun returns the latest report run for the same brand filter whose period ended
// before to; ok is false when there is none.
func (s *SQL) PreviousReportRun(ctx context.Context, to time.Time, brand string) (*ReportRun, bool, error) {
	run := &ReportRun{Brand: brand, States: map[string]string{}}
	var at, from, until int64
	err := s.db.QueryRowContext(ctx, `SELECT id, at, period_from, period_to FROM report_runs WHERE brand = $1 AND period_to < $2
		ORDER BY period_to DESC, id DESC LIMIT 1`, strings.ToLower(brand), to.UnixMilli()).Scan(&run.ID, &at, &from, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	run.At, run.From, run.To = fromMillis(at), fromMillis(from), fromMillis(until)
	rows, err := s.db.QueryContext(ctx, `SELECT name, state FROM report_items WHERE run_id = $1`, run.ID)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var name, state string
		if err := rows.Scan(&name, &state); err != nil {
			return nil, false, err
		}
		run.States[name] = state
	}
	return run, true, rows.Err()
}

// DayCount is a number of findings on one UTC day.
type DayCount struct {
	Day   string // YYYY-MM-DD
	Count int
}

// AlertsPerDay counts the cases whose verdict is alert now, by the UTC day of their first
// certificate in CT, for the days in [from, to).
func (s *SQL) AlertsPerDay(ctx context.Context, from, to time.Time, brand string) ([]DayCount, error) {
	q := `SELECT ct_seen FROM cases WHERE ct_seen >= $1 AND ct_seen < $2 AND verdict = 'alert'`
	args := []any{from.UnixMilli(), to.UnixMilli()}
	if brand != "" {
		q += ` AND brand_key = $3`
		args = append(args, strings.ToLower(brand))
	}
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	by := map[string]int{}
	for rows.Next() {
		var ms int64
		if err := rows.Scan(&ms); err != nil {
			return nil, err
		}
		by[fromMillis(ms).Format(time.DateOnly)]++
	}
	var out []DayCount
	for day, n := range by {
		out = append(out, DayCount{Day: day, Count: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Day < out[j].Day })
	return out, rows.Err()
}

// Destinations of abuse reports: the registrar's and the hosting provider's abuse desks by
// e-mail, Netcraft's report API, Google Safe Browsing's form (a packet pasted by hand), and
// ICANN Compliance (a complaint packet, after the registrar did not act).
const (
	DestRegistrar    = "registrar"
	DestHosting      = "hosting"
	DestNetcraft     = "netcraft"
	DestSafeBrowsing = "safebrowsing"
	DestICANN        = "icann"
)

// Report kinds: the first report, a follow-up of one that was not acted on, a complaint.
const (
	KindReport    = "report"
	KindFollowUp  = "follow-up"
	KindComplaint = "complaint"
)

// The takedown ladder of one report: drafted, approved, sent, then what the desk did
// (acknowledged, refused, no answer) and what became of the site (actioned: suspended, gone,
// down or blank). Withdrawn reports were replaced or dropped and count for nothing.
const (
	ReportDrafted      = "drafted"
	ReportApproved     = "approved"
	ReportSent         = "sent"
	ReportAcknowledged = "acknowledged"
	ReportActioned     = "actioned"
	ReportRefused      = "refused"
	ReportNoAnswer     = "no-answer"
	ReportWithdrawn    = "withdrawn"
)

// AbuseReport is one prepared (and maybe sent) report of a case to one destination.
type AbuseReport struct {
	ID          int64
	MessageID   string
	CaseID      int64
	Destination string
	Kind        string
	// Registrar names the desk: the registrar, the hosting network, the service.
	Registrar  string
	Recipient  string // an e-mail address or an API URL
	File       string // the draft as written to the outbox
	AbuseType  string // phishing or fraud
	FollowUpOf int64
	State      string
	StateAt    time.Time
	PreparedAt time.Time
	SentAt     time.Time // zero until sent
	SMTPReply  string
	Names      []string // the cases (registrable domains) it reports
}

// ReportEvent is one step of a report's ladder, with who took it.
type ReportEvent struct {
	At    time.Time
	State string
	Actor string
	Note  string
}

// ReportedDestinations returns, per case (registrable domain), the destinations it has a
// report for that was not withdrawn.
func (s *SQL) ReportedDestinations(ctx context.Context) (map[string]map[string]bool, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT d.name, r.destination FROM abuse_report_domains d JOIN abuse_reports r ON r.id = d.report_id
		WHERE r.state != 'withdrawn' AND r.kind = 'report'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]bool{}
	for rows.Next() {
		var n, dest string
		if err := rows.Scan(&n, &dest); err != nil {
			return nil, err
		}
		if out[n] == nil {
			out[n] = map[string]bool{}
		}
		out[n][dest] = true
	}
	return out, rows.Err()
}

// ReportedCases returns every case (registrable domain) that is part of an abuse report that
// was not withdrawn.
func (s *SQL) ReportedCases(ctx context.Context) (map[string]bool, error) {
	by, err := s.ReportedDestinations(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for n := range by {
		out[n] = true
	}
	return out, nil
}

// RecordAbuseReport keeps a prepared report, the names it covers and its first step.
func (s *SQL) RecordAbuseReport(ctx context.Context, r *AbuseReport) error {
	if r.State == "" {
		r.State = ReportDrafted
	}
	if r.Destination == "" {
		r.Destination = DestRegistrar
	}
	if r.Kind == "" {
		r.Kind = KindReport
	}
	r.StateAt = r.PreparedAt
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO abuse_reports (message_id, registrar, recipient, file, prepared_at, case_id, destination,
			kind, state, follow_up_of, abuse_type, state_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$5) RETURNING id`,
			r.MessageID, r.Registrar, r.Recipient, r.File, r.PreparedAt.UnixMilli(), r.CaseID, r.Destination, r.Kind, r.State, r.FollowUpOf,
			r.AbuseType).Scan(&r.ID); err != nil {
			return fmt.Errorf("%s: recording abuse report %s: %w", s.path, r.MessageID, err)
		}
		for _, n := range r.Names {
			if _, err := tx.ExecContext(ctx, `INSERT INTO abuse_report_domains (report_id, name) VALUES ($1,$2)`, r.ID, n); err != nil {
				return err
			}
		}
		return addReportEvent(ctx, tx, r.ID, r.PreparedAt, r.State, "helpwatch", "")
	})
}

func addReportEvent(ctx context.Context, tx *sql.Tx, id int64, at time.Time, state, actor, note string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO report_events (report_id, at, state, actor, note) VALUES ($1,$2,$3,$4,$5)`, id, at.UnixMilli(), state, actor, note)
	return err
}

const abuseReportColumns = `id, message_id, case_id, destination, kind, registrar, recipient, file, abuse_type, follow_up_of, state, state_at,
	prepared_at, sent_at, smtp_reply`

func scanAbuseReport(row interface{ Scan(...any) error }) (*AbuseReport, error) {
	r := &AbuseReport{}
	var stateAt, prepared int64
	var sent sql.NullInt64
	if err := row.Scan(&r.ID, &r.MessageID, &r.CaseID, &r.Destination, &r.Kind, &r.Registrar, &r.Recipient, &r.File, &r.AbuseType,
		&r.FollowUpOf, &r.State, &stateAt, &prepared, &sent, &r.SMTPReply); err != nil {
		return nil, err
	}
	r.StateAt, r.PreparedAt = fromMillis(stateAt), fromMillis(prepared)
	if sent.Valid {
		r.SentAt = fromMillis(sent.Int64)
	}
	return r, nil
}

// AbuseReports lists the reports (all, or those of one case when caseID > 0), oldest first,
// with their names.
func (s *SQL) AbuseReports(ctx context.Context, caseID int64) ([]*AbuseReport, error) {
	q := `SELECT ` + abuseReportColumns + ` FROM abuse_reports`
	var args []any
	if caseID > 0 {
		q += ` WHERE case_id = $1`
		args = append(args, caseID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY prepared_at, id`, args...)
	if err != nil {
		return nil, err
	}
	var out []*AbuseReport
	byID := map[int64]*AbuseReport{}
	for rows.Next() {
		r, err := scanAbuseReport(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, r)
		byID[r.ID] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	names, err := s.db.QueryContext(ctx, `SELECT report_id, name FROM abuse_report_domains ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer names.Close()
	for names.Next() {
		var id int64
		var n string
		if err := names.Scan(&id, &n); err != nil {
			return nil, err
		}
		if r := byID[id]; r != nil {
			r.Names = append(r.Names, n)
		}
	}
	return out, names.Err()
}

// AbuseReportByID finds a report; ok is false when there is none.
func (s *SQL) AbuseReportByID(ctx context.Context, id int64) (*AbuseReport, bool, error) {
	r, err := scanAbuseReport(s.db.QueryRowContext(ctx, `SELECT `+abuseReportColumns+` FROM abuse_reports WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return r, true, nil
}

// ReportEvents is the ladder of one report, oldest first.
func (s *SQL) ReportEvents(ctx context.Context, id int64) ([]ReportEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, state, actor, note FROM report_events WHERE report_id = $1 ORDER BY at, state`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ReportEvent
	for rows.Next() {
		var e ReportEvent
		var at int64
		if err := rows.Scan(&at, &e.State, &e.Actor, &e.Note); err != nil {
			return nil, err
		}
		e.At = fromMillis(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// ErrReportState is a step the report's ladder does not allow from where it is.
var ErrReportState = errors.New("not allowed from its state")

// allowedFrom says which states a step may be taken from.
var allowedFrom = map[string][]string{
	ReportApproved:     {ReportDrafted},
	ReportSent:         {ReportApproved},
	ReportAcknowledged: {ReportSent, ReportNoAnswer},
	ReportRefused:      {ReportSent, ReportAcknowledged, ReportNoAnswer},
	ReportNoAnswer:     {ReportSent},
	ReportActioned:     {ReportSent, ReportAcknowledged, ReportNoAnswer, ReportRefused},
	ReportWithdrawn:    {ReportDrafted, ReportApproved},
}

// SetReportState takes one step of a report's ladder and records who took it and why. An
// approved report to a destination that is delivered by helpwatch is queued for delivery
// (jobs.Deliver) in the same transaction.
func (s *SQL) SetReportState(ctx context.Context, id int64, state, actor, note string, at time.Time, deliver bool) error {
	from, ok := allowedFrom[state]
	if !ok {
		return fmt.Errorf("report %d: %q is not a step of the ladder", id, state)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var current string
		var caseID int64
		if err := tx.QueryRowContext(ctx, `SELECT state, case_id FROM abuse_reports WHERE id = $1`, id).Scan(&current, &caseID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("report %d does not exist", id)
			}
			return err
		}
		if !slices.Contains(from, current) {
			return fmt.Errorf("report %d is %s: %s is %w", id, current, state, ErrReportState)
		}
		q := `UPDATE abuse_reports SET state = $1, state_at = $2 WHERE id = $3`
		if state == ReportSent {
			q = `UPDATE abuse_reports SET state = $1, state_at = $2, sent_at = $2 WHERE id = $3`
		}
		if _, err := tx.ExecContext(ctx, q, state, at.UnixMilli(), id); err != nil {
			return err
		}
		if state == ReportApproved && deliver {
			if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, case_id, ref, after_kind, state, max_attempts, created_at, due_at)
				VALUES ($1, $2, $3, '', 'queued', $4, $5, $5) ON CONFLICT DO NOTHING`, jobs.Deliver.Name, caseID, id, jobs.Deliver.MaxAttempts, at.UnixMilli()); err != nil {
				return err
			}
		}
		return addReportEvent(ctx, tx, id, at, state, actor, note)
	})
}

// MarkReportDelivered completes a delivery job: the report is sent, with the server's answer.
func (s *SQL) MarkReportDelivered(ctx context.Context, job *Job, id int64, at time.Time, reply string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if job != nil {
			if err := s.completeJob(ctx, tx, job, s.now()); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE abuse_reports SET state = 'sent', state_at = $1, sent_at = $1, smtp_reply = $2
			WHERE id = $3 AND state = 'approved'`, at.UnixMilli(), reply, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("abuse report %d is not approved (already sent, or withdrawn)", id)
		}
		return addReportEvent(ctx, tx, id, at, ReportSent, "helpwatch", reply)
	})
}

// ReportedDomain is a case in a sent abuse report, with its takedown if one was seen.
type ReportedDomain struct {
	Name          string // the case's registrable domain
	ReportID      int64
	Destination   string
	Registrar     string // the desk: registrar or hosting network
	SentAt        time.Time
	TakenDownAt   time.Time
	TakedownState string
}

// ReportedDomains lists the names of sent reports to abuse desks (registrar and hosting);
// with open only those not yet taken down.
func (s *SQL) ReportedDomains(ctx context.Context, open bool) ([]ReportedDomain, error) {
	q := `SELECT d.name, r.id, r.destination, r.registrar, r.sent_at, d.taken_down_at, d.takedown_state FROM abuse_report_domains d
		JOIN abuse_reports r ON r.id = d.report_id WHERE r.sent_at IS NOT NULL AND r.kind = 'report'`
	if open {
		q += ` AND d.taken_down_at IS NULL`
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY r.sent_at, d.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ReportedDomain
	for rows.Next() {
		var d ReportedDomain
		var sent int64
		var down sql.NullInt64
		if err := rows.Scan(&d.Name, &d.ReportID, &d.Destination, &d.Registrar, &sent, &down, &d.TakedownState); err != nil {
			return nil, err
		}
		d.SentAt = fromMillis(sent)
		if down.Valid {
			d.TakenDownAt = fromMillis(down.Int64)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// backUpRecheck is when a taken-down site is first checked again.
const backUpRecheck = 24 * time.Hour

// RecordTakedown notes when a reported name was first seen dark or suspended, and moves the
// report (and its follow-ups) to actioned. The case's site is checked again a day later (and
// then on the site check's re-check schedule), so that a site back up is seen.
func (s *SQL) RecordTakedown(ctx context.Context, reportID int64, name string, at time.Time, state string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE abuse_report_domains SET taken_down_at = $1, takedown_state = $2
			WHERE report_id = $3 AND name = $4 AND taken_down_at IS NULL`, at.UnixMilli(), state, reportID, name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, case_id, ref, after_kind, state, max_attempts, created_at, due_at)
			SELECT $1, case_id, 0, '', 'queued', $2, $3, $4 FROM abuse_reports WHERE id = $5 ON CONFLICT DO NOTHING`,
			jobs.Site.Name, jobs.Site.MaxAttempts, at.UnixMilli(), at.Add(backUpRecheck).UnixMilli(), reportID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM abuse_reports WHERE (id = $1 OR follow_up_of = $1)
			AND state IN ('sent', 'acknowledged', 'no-answer', 'refused')`, reportID)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE abuse_reports SET state = 'actioned', state_at = $1 WHERE id = $2`, at.UnixMilli(), id); err != nil {
				return err
			}
			if err := addReportEvent(ctx, tx, id, at, ReportActioned, "helpwatch", name+" is "+state+" (seen by the re-check)"); err != nil {
				return err
			}
		}
		return nil
	})
}
