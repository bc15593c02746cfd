package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

// dialect names the SQL differences between the databases behind SQL. Queries are written
// with $N placeholders, which both SQLite and PostgreSQL read.
type dialect int

const (
	sqliteDialect dialect = iota
	postgresDialect
)

// SQL is the Store on a database/sql database: SQLite (embedded, the default) or PostgreSQL
// (a team's shared store). Writes go through db; reads that need no transaction through read.
// It is safe for concurrent use.
type SQL struct {
	db, read *sql.DB
	path     string // the file, or the database URL without credentials, for messages
	dialect  dialect
	opts     Options

	rules ruleState
	// rescoreAfterMigrations is set by a migration that left cases to be scored once the rule
	// set is resolved (Open does it).
	rescoreAfterMigrations bool

	leases logLeases

	// lastReap is when this store last took back the jobs of gone workers (Unix ms).
	lastReap atomic.Int64
}

// now is the store's clock (Options.Now).
func (s *SQL) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// Path names the database in messages: the SQLite file, or the PostgreSQL URL without its
// password.
func (s *SQL) Path() string { return s.path }

// inTx runs f in a write transaction: committed when f returns nil, rolled back otherwise.
// Errors come back explained (a full disk, a damaged file).
func (s *SQL) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.explain(fmt.Errorf("%s: begin: %w", s.path, err))
	}
	defer tx.Rollback() // a no-op after Commit
	if err := f(tx); err != nil {
		return s.explain(err)
	}
	if err := tx.Commit(); err != nil {
		return s.explain(fmt.Errorf("%s: commit: %w", s.path, err))
	}
	return nil
}

// Close closes the store; a store that was not closed (a crash) is still consistent and loses
// no committed transaction.
func (s *SQL) Close() error {
	s.closeLeases()
	if s.dialect == sqliteDialect {
		// A checkpoint folds the WAL into the main file so a copied .db is complete on its own.
		_, _ = s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	if s.read != nil && s.read != s.db {
		s.read.Close()
	}
	return s.db.Close()
}

func certKey(c *watcher.Certificate) string {
	if c.Fingerprint != "" {
		return c.Fingerprint
	}
	if c.LogURL != "" && c.Index >= 0 {
		return c.LogURL + "#" + strconv.FormatInt(c.Index, 10)
	}
	return ""
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

func fromUnix(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

// placeholders returns "$from, $from+1, ..." for n values.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", from+i)
	}
	return b.String()
}

// Brands lists the brands of the stored cases (as scored; a custom rule file may add some),
// one name per brand key. It skips along the brand index (one lookup per brand) instead of
// reading every case: the console asks on every queue page.
func (s *SQL) Brands(ctx context.Context) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `WITH RECURSIVE k(key) AS (
			SELECT MIN(brand_key) FROM cases WHERE brand_key > ''
			UNION ALL
			SELECT (SELECT MIN(brand_key) FROM cases WHERE brand_key > k.key) FROM k WHERE k.key IS NOT NULL)
		SELECT (SELECT brand FROM cases WHERE brand_key = k.key LIMIT 1) FROM k WHERE k.key IS NOT NULL ORDER BY k.key`)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// DayCounts are one UTC day's totals.
type DayCounts struct {
	Day string
	Counts
}

// DailyCounts returns the per-day totals, oldest first.
func (s *SQL) DailyCounts(ctx context.Context) ([]DayCounts, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT day, messages, names, findings, dropped FROM daily_counts ORDER BY day`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DayCounts
	for rows.Next() {
		var d DayCounts
		if err := rows.Scan(&d.Day, &d.Messages, &d.Names, &d.Findings, &d.Dropped); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
