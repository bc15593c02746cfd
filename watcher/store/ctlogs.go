package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

// saveLogPositions records the last position of each log in a batch, adding up what the
// batch's positions read. A position behind the stored one (a second process on the same
// log) does not move it back, and entries another process has already stored the position of
// are not counted again: after a lease changed hands, a few entries may have been read by
// both processes (the names and certificates are stored once whoever stores them).
func saveLogPositions(ctx context.Context, tx *sql.Tx, positions []watcher.LogPosition, now time.Time) error {
	if len(positions) == 0 {
		return nil
	}
	last := map[string]int{}
	read := map[string]int64{}
	var order []string
	for i, p := range positions {
		if _, ok := last[p.LogID]; !ok {
			order = append(order, p.LogID)
		}
		last[p.LogID] = i
		read[p.LogID] += p.Read
	}
	at := millis(now)
	for _, id := range order {
		p := positions[last[id]]
		compact := make([]byte, 0, 32*len(p.Compact)) // not nil: NULL is refused
		for _, h := range p.Compact {
			compact = append(compact, h...)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ct_logs (log_id, name, url, tree_size, root_hash, tree_time, next_index, compact, entries, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (log_id) DO UPDATE SET name = excluded.name, url = excluded.url,
				tree_size = excluded.tree_size, root_hash = excluded.root_hash, tree_time = excluded.tree_time,
				next_index = excluded.next_index, compact = excluded.compact,
				entries = ct_logs.entries + CASE WHEN excluded.entries < excluded.next_index - ct_logs.next_index
					THEN excluded.entries ELSE excluded.next_index - ct_logs.next_index END,
				updated_at = excluded.updated_at
			WHERE excluded.next_index >= ct_logs.next_index AND excluded.tree_size >= ct_logs.tree_size`,
			p.LogID, p.Name, p.URL, p.TreeSize, p.RootHash, millis(p.TreeTime), p.Next, compact, read[id], at); err != nil {
			return fmt.Errorf("storing the position in CT log %s: %w", p.Name, err)
		}
	}
	return nil
}

// LogPositions returns the stored position of every CT log read so far; Read holds the
// entries read in all runs.
func (s *SQL) LogPositions(ctx context.Context) ([]watcher.LogPosition, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT log_id, name, url, tree_size, root_hash, tree_time, next_index, compact, entries
		FROM ct_logs ORDER BY name`)
	if err != nil {
		return nil, s.explain(err)
	}
	defer rows.Close()
	var out []watcher.LogPosition
	for rows.Next() {
		var p watcher.LogPosition
		var treeTime int64
		var compact []byte
		if err := rows.Scan(&p.LogID, &p.Name, &p.URL, &p.TreeSize, &p.RootHash, &treeTime, &p.Next, &compact, &p.Read); err != nil {
			return nil, err
		}
		if len(compact)%32 != 0 {
			return nil, fmt.Errorf("stored frontier of CT log %s is damaged (%d bytes)", p.Name, len(compact))
		}
		for i := 0; i < len(compact); i += 32 {
			p.Compact = append(p.Compact, compact[i:i+32])
		}
		p.TreeTime = fromMillis(treeTime)
		out = append(out, p)
	}
	return out, rows.Err()
}
