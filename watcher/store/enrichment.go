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
		if err := s.completeJob(ctx, tx, job, time.Now()); err != nil {
			return err
		}
		registered := int64(0)
		if en.Registration.State == watcher.Found {
			registered = millis(en.Registration.Created)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET enrichment = $1, enriched_at = $2, registrar = $3, registered = $4 WHERE id = $5`,
			string(data), millis(en.At), en.Registration.Registrar, registered, job.CaseID); err != nil {
			return fmt.Errorf("%s: storing the enrichment of %s: %w", s.path, job.Registrable, err)
		}
		return s.rescore(ctx, tx, []int64{job.CaseID})
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
