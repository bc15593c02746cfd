package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
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
func (s *SQLite) RecordCheck(ctx context.Context, c Check) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO domain_checks (name, checked_at, state, detail) VALUES (?,?,?,?)
		ON CONFLICT DO UPDATE SET state = excluded.state, detail = excluded.detail`, c.Name, c.At.UnixMilli(), c.State, c.Detail)
	return err
}

// SeenUp reports whether name was ever seen up: a live check, a site check that got an HTTP
// answer, or an address in its enrichment.
func (s *SQLite) SeenUp(ctx context.Context, name string) (bool, error) {
	var up bool
	err := s.db.QueryRowContext(ctx, `SELECT
		EXISTS(SELECT 1 FROM domain_checks WHERE name = ?1 AND state = 'live') OR
		EXISTS(SELECT 1 FROM site_checks WHERE name = ?1 AND status > 0) OR
		EXISTS(SELECT 1 FROM findings WHERE name = ?1 AND enrichment != '' AND (
			json_array_length(enrichment, '$.dns.a') > 0 OR json_array_length(enrichment, '$.dns.aaaa') > 0 OR
			json_array_length(enrichment, '$.dns.cname') > 0))`, name).Scan(&up)
	if err != nil {
		return false, fmt.Errorf("%s: %w", s.path, err)
	}
	return up, nil
}

// LatestChecks returns the newest check of each name that has one, at or before at.
func (s *SQLite) LatestChecks(ctx context.Context, at time.Time) (map[string]Check, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.name, c.checked_at, c.state, c.detail FROM domain_checks c
		JOIN (SELECT name, MAX(checked_at) AS last FROM domain_checks WHERE checked_at <= ? GROUP BY name) l
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
func (s *SQLite) RecordReportRun(ctx context.Context, run *ReportRun) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO report_runs (at, period_from, period_to, brand) VALUES (?,?,?,?)`,
		run.At.UnixMilli(), run.From.UnixMilli(), run.To.UnixMilli(), strings.ToLower(run.Brand))
	if err != nil {
		return err
	}
	run.ID, _ = res.LastInsertId()
	for name, state := range run.States {
		if _, err := tx.ExecContext(ctx, `INSERT INTO report_items (run_id, name, state) VALUES (?,?,?)`, run.ID, name, state); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// PreviousReportRun returns the latest report run for the same brand filter whose period ended
// before to; ok is false when there is none.
func (s *SQLite) PreviousReportRun(ctx context.Context, to time.Time, brand string) (*ReportRun, bool, error) {
	run := &ReportRun{Brand: brand, States: map[string]string{}}
	var at, from, until int64
	err := s.db.QueryRowContext(ctx, `SELECT id, at, period_from, period_to FROM report_runs WHERE brand = ? AND period_to < ?
		ORDER BY period_to DESC, id DESC LIMIT 1`, strings.ToLower(brand), to.UnixMilli()).Scan(&run.ID, &at, &from, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	run.At, run.From, run.To = fromMillis(at), fromMillis(from), fromMillis(until)
	rows, err := s.db.QueryContext(ctx, `SELECT name, state FROM report_items WHERE run_id = ?`, run.ID)
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

// AlertsPerDay counts findings whose current verdict (revised when enriched) is alert, by the
// UTC day they were first seen, for the days in [from, to).
func (s *SQLite) AlertsPerDay(ctx context.Context, from, to time.Time, brand string) ([]DayCount, error) {
	q := `SELECT strftime('%Y-%m-%d', first_seen / 1000, 'unixepoch') AS day, COUNT(*) FROM findings
		WHERE first_seen >= ? AND first_seen < ? AND COALESCE(revised_verdict, verdict) = 'alert'`
	args := []any{from.UnixMilli(), to.UnixMilli()}
	if brand != "" {
		q += ` AND brand = ? COLLATE NOCASE`
		args = append(args, brand)
	}
	rows, err := s.db.QueryContext(ctx, q+` GROUP BY day ORDER BY day`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DayCount
	for rows.Next() {
		var d DayCount
		if err := rows.Scan(&d.Day, &d.Count); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
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
	Names      []string
}

// ReportedNames returns every name that is part of an abuse report, prepared or sent.
func (s *SQLite) ReportedNames(ctx context.Context) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT name FROM abuse_report_domains`)
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
func (s *SQLite) RecordAbuseReport(ctx context.Context, r *AbuseReport) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO abuse_reports (message_id, registrar, recipient, file, prepared_at) VALUES (?,?,?,?,?)`,
		r.MessageID, r.Registrar, r.Recipient, r.File, r.PreparedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("%s: recording abuse report %s: %w", s.path, r.MessageID, err)
	}
	r.ID, _ = res.LastInsertId()
	for _, n := range r.Names {
		if _, err := tx.ExecContext(ctx, `INSERT INTO abuse_report_domains (report_id, name) VALUES (?,?)`, r.ID, n); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// AbuseReportByMessageID finds a prepared report; ok is false for a message this store never
// prepared.
func (s *SQLite) AbuseReportByMessageID(ctx context.Context, messageID string) (*AbuseReport, bool, error) {
	r := &AbuseReport{MessageID: messageID}
	var prepared int64
	var sent sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT id, registrar, recipient, file, prepared_at, sent_at, smtp_reply FROM abuse_reports WHERE message_id = ?`,
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
func (s *SQLite) MarkAbuseReportSent(ctx context.Context, messageID string, at time.Time, reply string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE abuse_reports SET sent_at = ?, smtp_reply = ? WHERE message_id = ? AND sent_at IS NULL`,
		at.UnixMilli(), reply, messageID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("abuse report %s is unknown or already marked sent", messageID)
	}
	return nil
}

// ReportedDomain is a name in a sent abuse report, with its takedown if one was seen.
type ReportedDomain struct {
	Name          string
	ReportID      int64
	Registrar     string
	SentAt        time.Time
	TakenDownAt   time.Time
	TakedownState string
}

// ReportedDomains lists the names of sent reports; with open only those not yet taken down.
func (s *SQLite) ReportedDomains(ctx context.Context, open bool) ([]ReportedDomain, error) {
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
func (s *SQLite) RecordTakedown(ctx context.Context, reportID int64, name string, at time.Time, state string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE abuse_report_domains SET taken_down_at = ?, takedown_state = ?
		WHERE report_id = ? AND name = ? AND taken_down_at IS NULL`, at.UnixMilli(), state, reportID, name)
	return err
}
