package store

import (
	"context"
	"time"
)

// Label is an analyst's judgement of a name.
type Label struct {
	Name  string    `json:"name"`
	Label string    `json:"label"` // scam, benign, unsure
	Note  string    `json:"note,omitempty"`
	By    string    `json:"by"`
	At    time.Time `json:"at"`
}

// AddLabel records a label; earlier labels of the name stay in the history.
func (s *SQLite) AddLabel(ctx context.Context, l Label) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO labels (name, label, note, labeled_by, labeled_at) VALUES (?,?,?,?,?)`,
		l.Name, l.Label, l.Note, l.By, l.At.UnixMilli())
	return err
}

// Labels returns the latest label of every name labeled at or after since, by name.
func (s *SQLite) Labels(ctx context.Context, since time.Time) ([]Label, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT l.name, l.label, l.note, l.labeled_by, l.labeled_at FROM labels l
		JOIN (SELECT name, MAX(id) AS last FROM labels GROUP BY name) x ON l.id = x.last
		WHERE l.labeled_at >= ? ORDER BY l.name`, since.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Label
	for rows.Next() {
		var l Label
		var at int64
		if err := rows.Scan(&l.Name, &l.Label, &l.Note, &l.By, &at); err != nil {
			return nil, err
		}
		l.At = fromMillis(at)
		out = append(out, l)
	}
	return out, rows.Err()
}
