package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
)

// QueueQuery is a page of the triage queue: an order, filters, and the cursor of the page's
// start (keyset pagination: a page costs the same at the millionth case as at the first).
type QueueQuery struct {
	ByScore     bool          // most points first (the score before its cap); else newest (CT time) first
	Verdict     rules.Verdict // exactly this verdict
	Brand       string        // case-insensitive
	Label       string        // "", "none", scam, benign, unsure
	SiteVerdict string        // the strongest latest site verdict; "none": never checked
	Takedown    string        // a report state (drafted, sent, actioned, ...) any report of the case is in; "none": no report
	Campaign    string        // kind:value (phone:+1888..., chat:..., kit:..., page:...)
	Since       time.Time     // CT time at or after
	Until       time.Time     // CT time before
	After       string        // the Next of the previous page
	Limit       int           // default 50, at most 500
}

// QueueRow is one case in the queue.
type QueueRow struct {
	ID          int64
	Registrable string
	Brand       string
	Score       int
	Points      int // before the cap at 100
	Verdict     rules.Verdict
	SiteVerdict string
	Label       string
	Registrar   string
	CTSeen      time.Time
}

// QueuePage is a page and the cursor of the next one ("" at the end).
type QueuePage struct {
	Rows []QueueRow
	Next string
}

// ErrBadCursor is a cursor that this store did not make.
var ErrBadCursor = fmt.Errorf("not a page cursor of this queue")

// Queue returns a page of cases.
func (s *SQL) Queue(ctx context.Context, q QueueQuery) (QueuePage, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Verdict != "" {
		where = append(where, "verdict = "+arg(string(q.Verdict)))
	}
	if q.Brand != "" {
		where = append(where, "brand_key = "+arg(strings.ToLower(q.Brand)))
	}
	where = appendOptional(where, "label_kind", q.Label, arg)
	where = appendOptional(where, "site_verdict", q.SiteVerdict, arg)
	switch q.Takedown {
	case "":
	case "none":
		where = append(where, "NOT EXISTS (SELECT 1 FROM abuse_reports r WHERE r.case_id = cases.id AND r.state <> 'withdrawn')")
	default:
		where = append(where, "EXISTS (SELECT 1 FROM abuse_reports r WHERE r.case_id = cases.id AND r.state = "+arg(q.Takedown)+")")
	}
	if q.Campaign != "" {
		kind, value, ok := strings.Cut(q.Campaign, ":")
		if !ok {
			return QueuePage{}, fmt.Errorf("campaign %q: want kind:value", q.Campaign)
		}
		// The few cases of a campaign are found from its links, not by testing every case.
		where = append(where, "id IN (SELECT l.case_id FROM site_links l WHERE l.kind = "+arg(kind)+" AND l.value = "+arg(value)+")")
	}
	if !q.Since.IsZero() {
		where = append(where, "ct_seen >= "+arg(q.Since.UnixMilli()))
	}
	if !q.Until.IsZero() {
		where = append(where, "ct_seen < "+arg(q.Until.UnixMilli()))
	}
	// By score means by points: the evidence before the cap, so that cases the cap at 100
	// would tie still rank (the score shown stays the capped one).
	key := "ct_seen"
	if q.ByScore {
		key = "points"
	}
	if q.After != "" {
		v, id, err := parseCursor(q.After)
		if err != nil {
			return QueuePage{}, err
		}
		where = append(where, fmt.Sprintf("(%s < %s OR (%s = %s AND id < %s))", key, arg(v), key, arg(v), arg(id)))
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 500)
	query := `SELECT id, registrable, brand, score, points, verdict, site_verdict, label_kind, registrar, ct_seen FROM cases`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY %s DESC, id DESC LIMIT %d", key, limit+1)
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return QueuePage{}, err
	}
	defer rows.Close()
	var page QueuePage
	for rows.Next() {
		var r QueueRow
		var seen int64
		if err := rows.Scan(&r.ID, &r.Registrable, &r.Brand, &r.Score, &r.Points, &r.Verdict, &r.SiteVerdict, &r.Label, &r.Registrar, &seen); err != nil {
			return QueuePage{}, err
		}
		r.CTSeen = fromMillis(seen)
		page.Rows = append(page.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return QueuePage{}, err
	}
	if len(page.Rows) > limit {
		page.Rows = page.Rows[:limit]
		last := page.Rows[limit-1]
		v := last.CTSeen.UnixMilli()
		if q.ByScore {
			v = int64(last.Points)
		}
		page.Next = fmt.Sprintf("%d.%d", v, last.ID)
	}
	return page, nil
}

// appendOptional adds the condition of a filter on a column that may be empty: "" filters
// nothing, "none" asks for the empty value, anything else for itself.
func appendOptional(where []string, column, value string, arg func(any) string) []string {
	switch value {
	case "":
		return where
	case "none":
		return append(where, column+" = ''")
	}
	return append(where, column+" = "+arg(value))
}

func parseCursor(c string) (int64, int64, error) {
	a, b, ok := strings.Cut(c, ".")
	v, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%q: %w", c, ErrBadCursor)
	}
	return v, id, nil
}

// RequestSiteCheck makes the case's site check due now: a queued check (a re-check waiting
// for its time) is moved to now, else a new one is queued; a check running now is enough.
func (s *SQL) RequestSiteCheck(ctx context.Context, caseID int64) error {
	now := s.now().UnixMilli()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM cases WHERE id = $1`, caseID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("case %d does not exist", caseID)
		}
		res, err := tx.ExecContext(ctx, `UPDATE jobs SET due_at = $1, after_kind = '' WHERE kind = $2 AND case_id = $3 AND ref = 0 AND state = 'queued'`,
			now, jobs.Site.Name, caseID)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k > 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO jobs (kind, case_id, ref, after_kind, state, max_attempts, created_at, due_at)
			VALUES ($1, $2, 0, '', 'queued', $3, $4, $4) ON CONFLICT DO NOTHING`, jobs.Site.Name, caseID, jobs.Site.MaxAttempts, now)
		return err
	})
}

// LabelHistory is every label a case was given, oldest first.
func (s *SQL) LabelHistory(ctx context.Context, registrable string) ([]Label, error) {
	return s.queryLabels(ctx, `SELECT registrable, label, note, labeled_by, labeled_at FROM labels WHERE registrable = $1
		ORDER BY labeled_at, id`, registrable)
}

// SharedWith lists, for each phone number, chat account, kit or page the case's sites showed,
// the other cases that showed it too (at most 50 each): kind:value → registrable domains.
func (s *SQL) SharedWith(ctx context.Context, caseID int64) (map[string][]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT DISTINCT l.kind, l.value, c.registrable FROM site_links l
		JOIN site_links o ON o.kind = l.kind AND o.value = l.value AND o.case_id <> l.case_id
		JOIN cases c ON c.id = o.case_id
		WHERE l.case_id = $1 ORDER BY l.kind, l.value, c.registrable`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var kind, value, other string
		if err := rows.Scan(&kind, &value, &other); err != nil {
			return nil, err
		}
		if k := kind + ":" + value; len(out[k]) < 50 {
			out[k] = append(out[k], other)
		}
	}
	return out, rows.Err()
}

// JobProblem is a job whose last attempt failed: retried later, or failed for good.
type JobProblem struct {
	Kind        string
	Registrable string
	State       string // queued (to be retried) or failed
	Attempts    int
	LastError   string
	DueAt       time.Time // the next try, for a queued job
	FinishedAt  time.Time // for a failed job
}

// JobProblems lists the jobs that failed or wait for a retry, the latest first.
func (s *SQL) JobProblems(ctx context.Context, limit int) ([]JobProblem, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := s.read.QueryContext(ctx, fmt.Sprintf(`SELECT j.kind, COALESCE(c.registrable, ''), j.state, j.attempts, j.last_error, j.due_at, j.finished_at
		FROM jobs j LEFT JOIN cases c ON c.id = j.case_id
		WHERE j.last_error <> '' AND j.state IN ('queued', 'failed')
		ORDER BY j.started_at DESC, j.id DESC LIMIT %d`, limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []JobProblem
	for rows.Next() {
		var p JobProblem
		var due, finished int64
		if err := rows.Scan(&p.Kind, &p.Registrable, &p.State, &p.Attempts, &p.LastError, &due, &finished); err != nil {
			return nil, err
		}
		p.DueAt, p.FinishedAt = fromMillis(due), fromMillis(finished)
		out = append(out, p)
	}
	return out, rows.Err()
}

// CaseOfName returns the case a name belongs to: the case of that registrable domain, or the
// case holding that name (case-insensitive, a trailing dot ignored).
func (s *SQL) CaseOfName(ctx context.Context, name string) (*watcher.Case, bool, error) {
	name = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	if c, ok, err := s.Case(ctx, name); err != nil || ok {
		return c, ok, err
	}
	var id int64
	err := s.read.QueryRowContext(ctx, `SELECT case_id FROM names WHERE name = $1`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return s.CaseByID(ctx, id)
}
