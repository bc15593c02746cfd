package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

// Liveness states of a reported or listed domain.
const (
	StateLive      = "live"
	StateDark      = "dark"      // the name no longer resolves, or the registration is gone
	StateSuspended = "suspended" // the registry or registrar put it on hold
	StateUnknown   = "unknown"
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

// AbuseReport is one prepared (and maybe sent) message to a registrar's abuse desk.
type AbuseReport struct {
	ID         int64
	MessageID  string
	Registrar  string
	Recipient  string
	File       string
	PreparedAt time.Time
	SentAt     time.Time // zero until sent
	SMTPReply  string
	Names      []string // the cases (registrable domains) it reports
}

// ReportedCases returns every case (registrable domain) that is part of an abuse report,
// prepared or sent.
func (s *SQL) ReportedCases(ctx context.Context) (map[string]bool, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT DISTINCT name FROM abuse_report_domains`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[n] = true
	}
	return out, rows.Err()
}

// RecordAbuseReport keeps a prepared report and the names it covers.
func (s *SQL) RecordAbuseReport(ctx context.Context, r *AbuseReport) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, `INSERT INTO abuse_reports (message_id, registrar, recipient, file, prepared_at) VALUES ($1,$2,$3,$4,$5) RETURNING id`,
		r.MessageID, r.Registrar, r.Recipient, r.File, r.PreparedAt.UnixMilli()).Scan(&r.ID); err != nil {
		return fmt.Errorf("%s: recording abuse report %s: %w", s.path, r.MessageID, err)
	}
	for _, n := range r.Names {
		if _, err := tx.ExecContext(ctx, `INSERT INTO abuse_report_domains (report_id, name) VALUES ($1,$2)`, r.ID, n); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// AbuseReportByMessageID finds a prepared report; ok is false for a message this store never
// prepared.
func (s *SQL) AbuseReportByMessageID(ctx context.Context, messageID string) (*AbuseReport, bool, error) {
	r := &AbuseReport{MessageID: messageID}
	var prepared int64
	var sent sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT id, registrar, recipient, file, prepared_at, sent_at, smtp_reply FROM abuse_reports WHERE message_id = $1`,
		messageID).Scan(&r.ID, &r.Registrar, &r.Recipient, &r.File, &prepared, &sent, &r.SMTPReply)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	r.PreparedAt = fromMillis(prepared)
	if sent.Valid {
		r.SentAt = fromMillis(sent.Int64)
	}
	return r, true, nil
}

// MarkAbuseReportSent records that the SMTP server accepted the message.
func (s *SQL) MarkAbuseReportSent(ctx context.Context, messageID string, at time.Time, reply string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE abuse_reports SET sent_at = $1, smtp_reply = $2 WHERE message_id = $3 AND sent_at IS NULL`,
		at.UnixMilli(), reply, messageID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("abuse report %s is unknown or already marked sent", messageID)
	}
	return nil
}

// ReportedDomain is a case in a sent abuse report, with its takedown if one was seen.
type ReportedDomain struct {
	Name          string // the case's registrable domain
	ReportID      int64
	Registrar     string
	SentAt        time.Time
	TakenDownAt   time.Time
	TakedownState string
}

// ReportedDomains lists the names of sent reports; with open only those not yet taken down.
func (s *SQL) ReportedDomains(ctx context.Context, open bool) ([]ReportedDomain, error) {
	q := `SELECT d.name, r.id, r.registrar, r.sent_at, d.taken_down_at, d.takedown_state FROM abuse_report_domains d
		JOIN abuse_reports r ON r.id = d.report_id WHERE r.sent_at IS NOT NULL`
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
		if err := rows.Scan(&d.Name, &d.ReportID, &d.Registrar, &sent, &down, &d.TakedownState); err != nil {
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

// RecordTakedown notes when a reported name was first seen dark or suspended.
func (s *SQL) RecordTakedown(ctx context.Context, reportID int64, name string, at time.Time, state string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE abuse_report_domains SET taken_down_at = $1, takedown_state = $2
		WHERE report_id = $3 AND name = $4 AND taken_down_at IS NULL`, at.UnixMilli(), state, reportID, name)
	return err
}
