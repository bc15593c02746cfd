package store

import (
	"context"
	"database/sql"
	"strconv"
	"time"
)

// Sweep name states.
const (
	SweepNew     = "new"     // not asked yet
	SweepAbsent  = "absent"  // NXDOMAIN: not registered (asked again later)
	SweepUnknown = "unknown" // no answer (asked again sooner)
	SweepExists  = "exists"  // registered: stored as a case
)

// SweepName is one look-alike candidate of the sweep.
type SweepName struct {
	Domain, Brand, Kind, State string
	CheckedAt, NextCheck       time.Time
}

// AddSweepCandidates remembers candidates not known yet (due at once); it returns how many
// were new.
func (s *SQL) AddSweepCandidates(ctx context.Context, names []SweepName) (int, error) {
	added := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		added = 0
		for _, n := range names {
			res, err := tx.ExecContext(ctx, `INSERT INTO sweep_names (domain, brand, kind, state) VALUES ($1, $2, $3, $4)
				ON CONFLICT (domain) DO NOTHING`, n.Domain, n.Brand, n.Kind, SweepNew)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k > 0 {
				added++
			}
		}
		return nil
	})
	return added, err
}

// DueSweepNames lists up to limit candidates that are due to be asked about at now, oldest due
// first; names found to exist are not asked again.
func (s *SQL) DueSweepNames(ctx context.Context, now time.Time, limit int) ([]SweepName, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT domain, brand, kind, state, checked_at, next_check FROM sweep_names
		WHERE state != $1 AND next_check <= $2 ORDER BY next_check, domain LIMIT `+strconv.Itoa(max(limit, 1)), SweepExists, now.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SweepName
	for rows.Next() {
		var n SweepName
		var checked, next int64
		if err := rows.Scan(&n.Domain, &n.Brand, &n.Kind, &n.State, &checked, &next); err != nil {
			return nil, err
		}
		if checked > 0 {
			n.CheckedAt = fromMillis(checked)
		}
		n.NextCheck = fromMillis(next)
		out = append(out, n)
	}
	return out, rows.Err()
}

// RecordSweep notes what a candidate was found to be at at, and when to ask again.
func (s *SQL) RecordSweep(ctx context.Context, domain, state string, at, next time.Time) error {
	found := int64(0)
	if state == SweepExists {
		found = at.UnixMilli()
	}
	_, err := s.db.ExecContext(ctx, `UPDATE sweep_names SET state = $1, checked_at = $2, next_check = $3,
		found_at = CASE WHEN found_at = 0 THEN $4 ELSE found_at END WHERE domain = $5`, state, at.UnixMilli(), next.UnixMilli(), found, domain)
	return s.explain(err)
}

// SweepCounts are the candidates per state.
func (s *SQL) SweepCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT state, COUNT(*) FROM sweep_names GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}
