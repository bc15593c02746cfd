package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

func (s *SQL) SaveEnrichment(ctx context.Context, job *Job, en *watcher.Enrichment) error {
	data, err := json.Marshal(en)
	if err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockCaseFirst(ctx, tx, job.CaseID); err != nil {
			return err
		}
		if err := s.completeJob(ctx, tx, job, s.now()); err != nil {
			return err
		}
		registered := int64(0)
		if en.Registration.State == watcher.Found {
			registered = millis(en.Registration.Created)
		}
		// The score is computed from the new enrichment before it is written, so the case
		// row is written once: a worker's whole save is four statements.
		rs, err := s.Rules()
		if err != nil {
			return err
		}
		// Scored from the enrichment as stored (read back from its JSON), exactly as a later
		// rescore reads it.
		var stored watcher.Enrichment
		if err := json.Unmarshal(data, &stored); err != nil {
			return err
		}
		facts, firsts, err := s.caseFacts(ctx, tx, job.CaseID, &stored)
		if err != nil {
			return fmt.Errorf("%s: reading the case %s: %w", s.path, job.Registrable, err)
		}
		if facts == nil {
			return nil // the case is gone (never, short of a hand-edited database): nothing to store
		}
		args, err := scoreColumns(rs, facts, firsts)
		if err != nil {
			return err
		}
		args = append(args, string(data), millis(en.At), en.Registration.Registrar, registered, job.CaseID)
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET score = $1, verdict = $2, result = $3, rules_version = $4, brand = $5, brand_key = $6,
			first_result = $7, points = $8, enrichment = $9, enriched_at = $10, registrar = $11, registered = $12 WHERE id = $13`, args...); err != nil {
			return fmt.Errorf("%s: storing the enrichment of %s: %w", s.path, job.Registrable, err)
		}
		return nil
	})
}

// CachedRegistration returns the cached registration data of a registrable domain, if fresh.
func (s *SQL) CachedRegistration(ctx context.Context, registrable string, now time.Time) (*watcher.Registration, bool, error) {
	var data string
	err := s.read.QueryRowContext(ctx, `SELECT data FROM registration_cache WHERE registrable = $1 AND expires_at > $2`, registrable, now.UnixMilli()).Scan(&data)
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

// CacheRegistration keeps registration data until expires.
func (s *SQL) CacheRegistration(ctx context.Context, registrable string, reg *watcher.Registration, expires time.Time) error {
	data, err := json.Marshal(reg)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO registration_cache (registrable, data, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (registrable) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at`, registrable, string(data), expires.UnixMilli())
	return s.explain(err)
}
