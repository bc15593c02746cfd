package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

// Evidence is kept in two tables on both backends: artefacts (the files, named by their
// SHA-256 and never modified: a second copy of the same bytes is the same row) and captures
// (what a capture saw, as JSON, naming its artefacts through capture_artefacts). Keeping the
// files in the database rather than beside it means a backup, a copy or a PostgreSQL
// deployment of several hosts carries its evidence with it.

// DefaultEvidencePerCase bounds the bytes of artefacts kept for one case: a site that changes
// its page every minute must not fill the disk through its re-checks.
const DefaultEvidencePerCase = 32 << 20

// Artefact is one stored evidence file.
type Artefact struct {
	SHA256    string
	MediaType string
	Data      []byte
	StoredAt  time.Time
}

// SaveCapture completes a capture job: the capture and the artefacts it names, within the
// case's evidence budget (artefacts beyond it are not kept and named in Capture.Dropped, the
// smallest kept first so that certificates and pages survive where a screenshot cannot).
func (s *SQL) SaveCapture(ctx context.Context, job *Job, c *watcher.Capture, arts []Artefact) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		if job != nil {
			if err := s.lockCaseFirst(ctx, tx, job.CaseID); err != nil {
				return err
			}
			if err := s.completeJob(ctx, tx, job, now); err != nil {
				return err
			}
		}
		return s.insertCapture(ctx, tx, c, arts, now)
	})
}

func (s *SQL) insertCapture(ctx context.Context, tx *sql.Tx, c *watcher.Capture, arts []Artefact, now time.Time) error {
	var used int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(bytes), 0) FROM captures WHERE case_id = $1`, c.CaseID).Scan(&used); err != nil {
		return err
	}
	budget := s.opts.EvidencePerCase
	if budget <= 0 {
		budget = DefaultEvidencePerCase
	}
	sorted := slices.Clone(arts)
	slices.SortStableFunc(sorted, func(a, b Artefact) int { return len(a.Data) - len(b.Data) })
	var kept []Artefact
	var bytes int64
	for _, a := range sorted {
		if used+bytes+int64(len(a.Data)) > budget {
			c.Dropped = append(c.Dropped, fmt.Sprintf("%s %s (%d bytes): the case's evidence budget of %d bytes is used up", a.MediaType, a.SHA256, len(a.Data), budget))
			continue
		}
		kept = append(kept, a)
		bytes += int64(len(a.Data))
	}
	evidence, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := tx.QueryRowContext(ctx, `INSERT INTO captures (case_id, name, captured_at, verdict, bytes, evidence) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		c.CaseID, c.Name, c.At.UnixMilli(), string(c.Verdict), bytes, string(evidence)).Scan(&c.ID); err != nil {
		return fmt.Errorf("%s: storing the capture of %s: %w", s.path, c.Name, err)
	}
	for _, a := range kept {
		if _, err := tx.ExecContext(ctx, `INSERT INTO artefacts (sha256, media_type, size, data, stored_at) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (sha256) DO NOTHING`, a.SHA256, a.MediaType, len(a.Data), a.Data, now.UnixMilli()); err != nil {
			return fmt.Errorf("%s: storing artefact %s: %w", s.path, a.SHA256, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO capture_artefacts (capture_id, sha256) VALUES ($1, $2) ON CONFLICT DO NOTHING`, c.ID, a.SHA256); err != nil {
			return err
		}
	}
	return nil
}

// Captures returns a case's captures, newest first.
func (s *SQL) Captures(ctx context.Context, caseID int64) ([]watcher.Capture, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, case_id, evidence FROM captures WHERE case_id = $1 ORDER BY captured_at DESC, id DESC`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []watcher.Capture
	for rows.Next() {
		var id, cid int64
		var evidence string
		if err := rows.Scan(&id, &cid, &evidence); err != nil {
			return nil, err
		}
		var c watcher.Capture
		if err := json.Unmarshal([]byte(evidence), &c); err != nil {
			return nil, fmt.Errorf("%s: capture %d is unreadable: %w", s.path, id, err)
		}
		c.ID, c.CaseID = id, cid
		out = append(out, c)
	}
	return out, rows.Err()
}

// LatestObservedCapture is the newest capture of the case that shows abuse (a clone or
// helpline page to some profile); ok is false when there is none.
func (s *SQL) LatestObservedCapture(ctx context.Context, caseID int64) (*watcher.Capture, bool, error) {
	all, err := s.Captures(ctx, caseID)
	if err != nil {
		return nil, false, err
	}
	for i := range all {
		if all[i].Observed() {
			return &all[i], true, nil
		}
	}
	return nil, false, nil
}

// Artefact returns a stored evidence file; ok is false when it is not kept.
func (s *SQL) Artefact(ctx context.Context, sha string) (*Artefact, bool, error) {
	a := &Artefact{SHA256: sha}
	var at int64
	err := s.read.QueryRowContext(ctx, `SELECT media_type, data, stored_at FROM artefacts WHERE sha256 = $1`, sha).Scan(&a.MediaType, &a.Data, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	a.StoredAt = fromMillis(at)
	return a, true, nil
}

// PurgeEvidence deletes the captures made before cutoff, except those of cases with an abuse
// report that was not withdrawn (what a report cited stays as long as the report), and then
// every artefact no capture names. It returns the captures and bytes removed.
func (s *SQL) PurgeEvidence(ctx context.Context, cutoff time.Time) (int, int64, error) {
	var captures int
	var freed int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM captures WHERE captured_at < $1
			AND case_id NOT IN (SELECT case_id FROM abuse_reports WHERE state != 'withdrawn')`, cutoff.UnixMilli())
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		captures = int(n)
		if _, err := tx.ExecContext(ctx, `DELETE FROM capture_artefacts WHERE capture_id NOT IN (SELECT id FROM captures)`); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM artefacts WHERE sha256 NOT IN (SELECT sha256 FROM capture_artefacts)`).Scan(&freed); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM artefacts WHERE sha256 NOT IN (SELECT sha256 FROM capture_artefacts)`)
		return err
	})
	return captures, freed, err
}
