package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/helpwatch/helpwatch/rules"
)

func (s *SQL) AddLabel(ctx context.Context, l Label) error {
	switch l.Label {
	case rules.LabelScam, rules.LabelBenign, rules.LabelUnsure:
	default:
		return fmt.Errorf("unknown label %q (want scam, benign or unsure)", l.Label)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO labels (name, registrable, label, note, labeled_by, labeled_at) VALUES ($1, $1, $2, $3, $4, $5)`,
			l.Registrable, l.Label, l.Note, l.By, l.At.UnixMilli()); err != nil {
			return fmt.Errorf("%s: storing the label of %s: %w", s.path, l.Registrable, err)
		}
		var id int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM cases WHERE registrable = $1`, l.Registrable).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // kept for when the case appears
		}
		if err != nil {
			return err
		}
		if err := s.applyLatestLabel(ctx, tx, id); err != nil {
			return err
		}
		return s.rescore(ctx, tx, []int64{id})
	})
}

// applyLatestLabel copies a case's latest label (by time, then by entry) onto the case.
func (s *SQL) applyLatestLabel(ctx context.Context, tx queryer, caseID int64) error {
	var l rules.CaseLabel
	var at int64
	err := tx.QueryRowContext(ctx, `SELECT l.label, l.labeled_by, l.labeled_at, l.note FROM labels l JOIN cases c ON c.registrable = l.registrable
		WHERE c.id = $1 ORDER BY l.labeled_at DESC, l.id DESC LIMIT 1`, caseID).Scan(&l.Label, &l.By, &at, &l.Note)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	l.At = fromMillis(at)
	data, err := json.Marshal(&l)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE cases SET label = $1, label_kind = $2 WHERE id = $3`, string(data), l.Label, caseID)
	return err
}

// Labels returns the latest label of every case labeled at or after since, by case.
func (s *SQL) Labels(ctx context.Context, since time.Time) ([]Label, error) {
	return s.queryLabels(ctx, `SELECT l.registrable, l.label, l.note, l.labeled_by, l.labeled_at FROM labels l
		WHERE l.labeled_at >= $1 AND l.id = (SELECT x.id FROM labels x WHERE x.registrable = l.registrable ORDER BY x.labeled_at DESC, x.id DESC LIMIT 1)
		ORDER BY l.registrable`, since.UnixMilli())
}

// queryLabels runs a query of (registrable, label, note, labeled_by, labeled_at) rows.
func (s *SQL) queryLabels(ctx context.Context, query string, args ...any) ([]Label, error) {
	rows, err := s.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Label
	for rows.Next() {
		var l Label
		var at int64
		if err := rows.Scan(&l.Registrable, &l.Label, &l.Note, &l.By, &at); err != nil {
			return nil, err
		}
		l.At = fromMillis(at)
		out = append(out, l)
	}
	return out, rows.Err()
}
