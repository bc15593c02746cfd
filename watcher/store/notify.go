package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
)

// Notification states.
const (
	NotifyQueued   = "queued"   // a "notify" job delivers it
	NotifyDigest   = "digest"   // waits for its channel's next digest
	NotifyDigested = "digested" // went out in a digest (DigestID)
	NotifySent     = "sent"
)

// Notification is one event for one channel. Its (Channel, Key) pair is unique in the store:
// finding the same event again, in another process or after a restart, adds nothing.
type Notification struct {
	ID       int64
	Channel  string
	Event    string // new_case, site_confirmed, taken_down, back_up, log_lagging, log_refused, digest
	Key      string
	CaseID   int64
	Payload  []byte // the event as JSON: what every channel's message is made from
	State    string
	Created  time.Time
	Sent     time.Time
	Reply    string
	DigestID int64
	// JobState and JobError are those of its delivery job (empty when it has none).
	JobState, JobError string
}

// NotifyCursor is where an event scan of source got to (ok false before its first scan).
func (s *SQL) NotifyCursor(ctx context.Context, source string) (position int64, ok bool, err error) {
	err = s.read.QueryRowContext(ctx, `SELECT position FROM notify_cursors WHERE source = $1`, source).Scan(&position)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return position, err == nil, err
}

// AddNotifications stores the notifications that are new (by channel and key), made at at,
// queues a "notify" job for each new one that is not waiting for a digest, and moves source's
// cursor to position (never back), all in one transaction. It returns the new ones.
func (s *SQL) AddNotifications(ctx context.Context, at time.Time, source string, position int64, ns []Notification) ([]Notification, error) {
	var added []Notification
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		added = added[:0]
		now := at.UnixMilli()
		for _, n := range ns {
			state := NotifyQueued
			if n.State == NotifyDigest {
				state = NotifyDigest
			}
			var id int64
			err := tx.QueryRowContext(ctx, `INSERT INTO notifications (channel, event, event_key, case_id, payload, state, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (channel, event_key) DO NOTHING RETURNING id`,
				n.Channel, n.Event, n.Key, n.CaseID, string(n.Payload), state, now).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				continue // known already
			}
			if err != nil {
				return err
			}
			if state == NotifyQueued {
				if err := queueNotify(ctx, tx, n.CaseID, id, now); err != nil {
					return err
				}
			}
			n.ID, n.State, n.Created = id, state, fromMillis(now)
			added = append(added, n)
		}
		if source == "" {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO notify_cursors (source, position) VALUES ($1, $2)
			ON CONFLICT (source) DO UPDATE SET position = CASE WHEN excluded.position > notify_cursors.position
				THEN excluded.position ELSE notify_cursors.position END`, source, position)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: storing notifications: %w", s.path, err)
	}
	return added, nil
}

func queueNotify(ctx context.Context, tx *sql.Tx, caseID, id, now int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, case_id, ref, after_kind, state, max_attempts, created_at, due_at)
		VALUES ($1, $2, $3, '', 'queued', $4, $5, $5) ON CONFLICT DO NOTHING`, jobs.Notify.Name, caseID, id, jobs.Notify.MaxAttempts, now)
	return err
}

const notificationColumns = `n.id, n.channel, n.event, n.event_key, n.case_id, n.payload, n.state, n.created_at, n.sent_at, n.reply, n.digest_id,
	COALESCE((SELECT j.state FROM jobs j WHERE j.kind = 'notify' AND j.ref = n.id ORDER BY j.id DESC LIMIT 1), ''),
	COALESCE((SELECT j.last_error FROM jobs j WHERE j.kind = 'notify' AND j.ref = n.id ORDER BY j.id DESC LIMIT 1), '')`

func scanNotifications(rows *sql.Rows) ([]Notification, error) {
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		var n Notification
		var payload string
		var created, sent int64
		if err := rows.Scan(&n.ID, &n.Channel, &n.Event, &n.Key, &n.CaseID, &payload, &n.State, &created, &sent, &n.Reply, &n.DigestID,
			&n.JobState, &n.JobError); err != nil {
			return nil, err
		}
		n.Payload, n.Created = []byte(payload), fromMillis(created)
		if sent > 0 {
			n.Sent = fromMillis(sent)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// NotificationByID reads one notification.
func (s *SQL) NotificationByID(ctx context.Context, id int64) (*Notification, bool, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+notificationColumns+` FROM notifications n WHERE n.id = $1`, id)
	if err != nil {
		return nil, false, err
	}
	ns, err := scanNotifications(rows)
	if err != nil || len(ns) == 0 {
		return nil, false, err
	}
	return &ns[0], true, nil
}

// Notifications lists the latest notifications, newest first (channel "" for every channel).
func (s *SQL) Notifications(ctx context.Context, channel string, limit int) ([]Notification, error) {
	q, args := `SELECT `+notificationColumns+` FROM notifications n`, []any{}
	if channel != "" {
		q += ` WHERE n.channel = $1`
		args = append(args, channel)
	}
	rows, err := s.read.QueryContext(ctx, q+` ORDER BY n.id DESC LIMIT `+strconv.Itoa(max(limit, 1)), args...)
	if err != nil {
		return nil, err
	}
	return scanNotifications(rows)
}

// DigestMembers are the notifications a digest notification carried.
func (s *SQL) DigestMembers(ctx context.Context, digestID int64) ([]Notification, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+notificationColumns+` FROM notifications n WHERE n.digest_id = $1 ORDER BY n.id`, digestID)
	if err != nil {
		return nil, err
	}
	return scanNotifications(rows)
}

// MarkNotificationSent completes a notify job and records the notification as sent with the
// receiver's answer, in one transaction: once recorded, no worker sends it again.
func (s *SQL) MarkNotificationSent(ctx context.Context, job *Job, id int64, at time.Time, reply string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if job != nil {
			if err := s.completeJob(ctx, tx, job, s.now()); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `UPDATE notifications SET state = $1, sent_at = $2, reply = $3 WHERE id = $4`,
			NotifySent, at.UnixMilli(), watcher.Clean(reply, 300), id)
		return err
	})
}

// MakeDigest gathers channel's notifications waiting for a digest that were created before
// end into one "digest" notification keyed key, made at at (queued for delivery), marking them
// digested, in one transaction. It returns the digest (nil when nothing waits, or another
// process made it already).
func (s *SQL) MakeDigest(ctx context.Context, at time.Time, channel, key string, end time.Time) (*Notification, error) {
	var made *Notification
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		made = nil
		var waiting int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM notifications WHERE channel = $1 AND state = $2 AND created_at < $3`,
			channel, NotifyDigest, end.UnixMilli()).Scan(&waiting); err != nil {
			return err
		}
		if waiting == 0 {
			return nil
		}
		now := at.UnixMilli()
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO notifications (channel, event, event_key, case_id, payload, state, created_at)
			VALUES ($1, 'digest', $2, 0, '{}', $3, $4) ON CONFLICT (channel, event_key) DO NOTHING RETURNING id`,
			channel, key, NotifyQueued, now).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE notifications SET state = $1, digest_id = $2 WHERE channel = $3 AND state = $4 AND created_at < $5`,
			NotifyDigested, id, channel, NotifyDigest, end.UnixMilli()); err != nil {
			return err
		}
		if err := queueNotify(ctx, tx, 0, id, now); err != nil {
			return err
		}
		made = &Notification{ID: id, Channel: channel, Event: "digest", Key: key, State: NotifyQueued, Created: fromMillis(now)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: making the %s digest: %w", s.path, channel, err)
	}
	return made, nil
}

// OldestDigestWaiting is when the oldest notification of channel waiting for a digest was
// made (ok false when none waits).
func (s *SQL) OldestDigestWaiting(ctx context.Context, channel string) (time.Time, bool, error) {
	var at sql.NullInt64
	if err := s.read.QueryRowContext(ctx, `SELECT MIN(created_at) FROM notifications WHERE channel = $1 AND state = $2`,
		channel, NotifyDigest).Scan(&at); err != nil {
		return time.Time{}, false, err
	}
	if !at.Valid {
		return time.Time{}, false, nil
	}
	return fromMillis(at.Int64), true, nil
}

// CasesAfter lists up to limit cases with an id above afterID, in id order: the new-case scan.
func (s *SQL) CasesAfter(ctx context.Context, afterID int64, limit int) ([]watcher.Case, error) {
	return s.loadCases(ctx, s.read, "SELECT "+caseColumns+" FROM cases WHERE id > $1 ORDER BY id LIMIT "+strconv.Itoa(max(limit, 1)), afterID)
}

// MaxIDs are the highest ids of cases and site checks and the latest takedown time: where a
// new deployment's event scans start (events from before notifications were set up are not
// sent).
func (s *SQL) MaxIDs(ctx context.Context) (cases, siteChecks, takedownMillis int64, err error) {
	err = s.read.QueryRowContext(ctx, `SELECT COALESCE((SELECT MAX(id) FROM cases), 0), COALESCE((SELECT MAX(id) FROM site_checks), 0),
		COALESCE((SELECT MAX(taken_down_at) FROM abuse_report_domains), 0)`).Scan(&cases, &siteChecks, &takedownMillis)
	return
}

// SiteCheckEvent is a stored site check, with the latest takedown of its case before it.
type SiteCheckEvent struct {
	ID          int64
	CaseID      int64
	Registrable string
	Name        string
	Verdict     string
	CheckedAt   time.Time
	// DownBefore is the latest takedown recorded for the case before this check (zero: none).
	DownBefore time.Time
}

// SiteChecksAfter lists up to limit site checks with an id above afterID, in id order.
func (s *SQL) SiteChecksAfter(ctx context.Context, afterID int64, limit int) ([]SiteCheckEvent, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT sc.id, sc.case_id, COALESCE(c.registrable, ''), sc.name, sc.verdict, sc.checked_at,
		COALESCE((SELECT MAX(d.taken_down_at) FROM abuse_report_domains d JOIN abuse_reports r ON r.id = d.report_id
			WHERE r.case_id = sc.case_id AND d.taken_down_at <= sc.checked_at), 0)
		FROM site_checks sc LEFT JOIN cases c ON c.id = sc.case_id
		WHERE sc.id > $1 ORDER BY sc.id LIMIT `+strconv.Itoa(max(limit, 1)), afterID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SiteCheckEvent
	for rows.Next() {
		var e SiteCheckEvent
		var at, down int64
		if err := rows.Scan(&e.ID, &e.CaseID, &e.Registrable, &e.Name, &e.Verdict, &at, &down); err != nil {
			return nil, err
		}
		e.CheckedAt = fromMillis(at)
		if down > 0 {
			e.DownBefore = fromMillis(down)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// TakedownEvent is a reported name seen taken down.
type TakedownEvent struct {
	CaseID      int64
	Registrable string
	Name        string
	State       string // nxdomain, hold, down, cleared
	At          time.Time
}

// TakedownsAfter lists the takedowns recorded after afterMillis, oldest first.
func (s *SQL) TakedownsAfter(ctx context.Context, afterMillis int64, limit int) ([]TakedownEvent, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT r.case_id, COALESCE(c.registrable, ''), d.name, d.takedown_state, MIN(d.taken_down_at)
		FROM abuse_report_domains d JOIN abuse_reports r ON r.id = d.report_id LEFT JOIN cases c ON c.id = r.case_id
		WHERE d.taken_down_at > $1 GROUP BY r.case_id, c.registrable, d.name, d.takedown_state ORDER BY 5 LIMIT `+strconv.Itoa(max(limit, 1)), afterMillis)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TakedownEvent
	for rows.Next() {
		var e TakedownEvent
		var at int64
		if err := rows.Scan(&e.CaseID, &e.Registrable, &e.Name, &e.State, &at); err != nil {
			return nil, err
		}
		e.At = fromMillis(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
