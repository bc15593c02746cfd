package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

// ClaimEnrichment returns up to n findings whose enrichment is due, oldest first, and pushes
// them lease into the future so they are not handed out twice. A claimed finding that is never
// finished (a crash) becomes due again when its lease ends.
func (s *SQLite) ClaimEnrichment(ctx context.Context, n int, now time.Time, lease time.Duration) ([]watcher.Finding, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT name FROM enrich_queue WHERE due_at <= ? ORDER BY due_at, queued_at LIMIT ?`, now.UnixMilli(), n)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]watcher.Finding, 0, len(names))
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, `UPDATE enrich_queue SET due_at = ?, attempts = attempts + 1 WHERE name = ?`, now.Add(lease).UnixMilli(), name); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	for _, name := range names {
		fs, err := s.Findings(ctx, Query{Name: name})
		if err != nil {
			return nil, err
		}
		if len(fs) == 0 { // the finding is gone; so is its queue entry
			if _, err := s.db.ExecContext(ctx, `DELETE FROM enrich_queue WHERE name = ?`, name); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, fs[0])
	}
	return out, nil
}

// DueEnrichment counts the queued findings due at now.
func (s *SQLite) DueEnrichment(ctx context.Context, now time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM enrich_queue WHERE due_at <= ?`, now.UnixMilli()).Scan(&n)
	return n, err
}

// PendingEnrichment counts the queue.
func (s *SQLite) PendingEnrichment(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM enrich_queue`).Scan(&n)
	return n, err
}

// SaveEnrichment stores what was learned and the revised score, and takes the finding off the
// queue, in one transaction.
func (s *SQLite) SaveEnrichment(ctx context.Context, e *watcher.Enrichment, revised *rules.Result) error {
	ej, err := json.Marshal(e)
	if err != nil {
		return err
	}
	rj, err := json.Marshal(revised)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE findings SET enriched_at = ?, enrichment = ?, revised = ?, revised_score = ?, revised_verdict = ? WHERE name = ?`,
		e.At.UnixMilli(), string(ej), string(rj), revised.Score, string(revised.Verdict), e.Name); err != nil {
		return fmt.Errorf("%s: storing enrichment of %s: %w", s.path, e.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM enrich_queue WHERE name = ?`, e.Name); err != nil {
		return err
	}
	return tx.Commit()
}

// MaxEnrichAttempts bounds how often a finding nothing answered for is tried again (about a
// day and a half at the default 15-minute retry and lease).
const MaxEnrichAttempts = 6

// RetryEnrichment leaves a finding on the queue, due again at next, with the reason it failed;
// after MaxEnrichAttempts it leaves the queue alone and says to give up.
func (s *SQLite) RetryEnrichment(ctx context.Context, name string, next time.Time, reason string) (bool, error) {
	var attempts int
	if err := s.db.QueryRowContext(ctx, `SELECT attempts FROM enrich_queue WHERE name = ?`, name).Scan(&attempts); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return false, err
	}
	if attempts >= MaxEnrichAttempts {
		return true, nil
	}
	_, err := s.db.ExecContext(ctx, `UPDATE enrich_queue SET due_at = ?, last_error = ? WHERE name = ?`, next.UnixMilli(), reason, name)
	return false, err
}

// CachedRegistration returns the cached registration data of a registrable domain, if fresh.
func (s *SQLite) CachedRegistration(ctx context.Context, registrable string, now time.Time) (*watcher.Registration, bool, error) {
	var data string
	err := s.db.QueryRowContext(ctx, `SELECT data FROM registration_cache WHERE registrable = ? AND expires_at > ?`, registrable, now.UnixMilli()).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var reg watcher.Registration
	if err := json.Unmarshal([]byte(data), &reg); err != nil {
		return nil, false, nil // an unreadable entry is a miss
	}
	return &reg, true, nil
}

// CacheRegistration keeps registration data for ttl.
func (s *SQLite) CacheRegistration(ctx context.Context, registrable string, reg *watcher.Registration, expires time.Time) error {
	data, err := json.Marshal(reg)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO registration_cache (registrable, data, expires_at) VALUES (?,?,?)
		ON CONFLICT(registrable) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at`, registrable, string(data), expires.UnixMilli())
	return err
}
