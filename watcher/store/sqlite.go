package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/helpwatch/helpwatch/rules"
)

// DefaultPath is where `helpwatch watch` keeps its findings unless --db says otherwise.
const DefaultPath = "helpwatch.db"

// Options configure an opened store.
type Options struct {
	// Rules is the rule set the process was started with (--rules); nil uses the deployment's
	// active rule set (see rulesets.go). A set other than the active one is refused with a
	// RulesMismatchError, unless Activate makes it the active one.
	Rules *rules.RuleSet
	// Activate records Rules as the deployment's active rule set (rules use); the caller then
	// rescores the stored cases (Rescore).
	Activate bool
	// By is who opened the store, for the record of a rule set made active ("user@host").
	By string
	// Now is the clock of what the store stamps itself: jobs queued, completed, retried and
	// released, site checks and enrichments stored, CT positions, the day of the counts
	// (default time.Now; the queue's Runner.Now is the same kind of clock, tests set both).
	Now func() time.Time
	// ReadConns bounds the read pool (default 4).
	ReadConns int
	// EvidencePerCase bounds the bytes of captured artefacts kept per case (default
	// DefaultEvidencePerCase).
	EvidencePerCase int64
}

// OpenSQLite opens (creating if needed) the database at path and brings its schema up to date.
// WAL journaling with synchronous=NORMAL: a crash, even kill -9, loses no committed transaction
// and never leaves a corrupt file; a power loss may lose the last few. Writes go through one
// connection (SQLite has one writer); reads use a pool of their own, so a listing or a report
// never waits behind a write batch.
func OpenSQLite(ctx context.Context, path string, opts ...Options) (*SQL, error) {
	if path == "" {
		path = DefaultPath
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	dsn := func(extra ...string) string {
		q := url.Values{}
		for _, p := range append([]string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(ON)"}, extra...) {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		return "file:" + path + "?" + q.Encode()
	}
	// A new database file is readable by its owner only (its findings, accounts and
	// sessions are nobody else's); SQLite gives its WAL and shared-memory files the same
	// permissions. An existing file keeps the permissions it has.
	if f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	}
	db, err := sql.Open("sqlite", dsn())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One writer connection: SQLite has one writer anyway, and BEGIN IMMEDIATE on it makes a
	// claim or a batch one serialized step.
	db.SetMaxOpenConns(1)
	s := &SQL{db: db, path: path, dialect: sqliteDialect, opts: o}
	if err := s.migrate(ctx, sqliteMigrations, sqliteSteps); err != nil {
		db.Close()
		return nil, err
	}
	read, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	n := o.ReadConns
	if n <= 0 {
		n = 4
	}
	read.SetMaxOpenConns(n)
	s.read = read
	if err := s.resolveRules(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the migrations not yet applied, each with its Go step in one transaction.
func (s *SQL) migrate(ctx context.Context, migrations []string, steps map[int]func(context.Context, *SQL, *sql.Tx) error) error {
	if err := s.retryBusy(ctx, func() error {
		_, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`)
		return err
	}); err != nil {
		if err := s.explain(err); errors.Is(err, ErrDiskFull) || errors.Is(err, ErrCorrupt) {
			return err
		}
		return fmt.Errorf("%s: not a usable database: %w", s.path, err)
	}
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("%s: reading schema version: %w", s.path, s.explain(err))
	}
	if current > len(migrations) {
		return fmt.Errorf("%s: schema version %d is newer than this helpwatch understands (%d); use a newer helpwatch", s.path, current, len(migrations))
	}
	for v := current + 1; v <= len(migrations); v++ {
		if err := s.inTx(ctx, func(tx *sql.Tx) error {
			// Another process opening the same new file may have applied it since the version
			// was read: the version is read again inside the write transaction (BEGIN
			// IMMEDIATE on SQLite, the advisory lock on PostgreSQL), which serializes them.
			var now int
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&now); err != nil {
				return err
			}
			if now >= v {
				return nil
			}
			if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
				return err
			}
			if step := steps[v]; step != nil {
				if err := step(ctx, s, tx); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES ($1, $2)`, v, time.Now().Unix())
			return err
		}); err != nil {
			return fmt.Errorf("%s: migration %d: %w", s.path, v, err)
		}
	}
	return nil
}

// QuickCheck runs SQLite's quick_check (the page and index structure, without comparing every
// index with its table), so a damaged file is found when a command starts, not when storing
// the first finding fails. It returns an error wrapping ErrCorrupt naming the file.
func (s *SQL) QuickCheck(ctx context.Context) error {
	if s.dialect != sqliteDialect {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		return s.explain(err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return s.explain(err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return s.explain(err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s failed its check (%s); restore it from a backup, or move it aside to start a new one",
			ErrCorrupt, s.path, strings.Join(problems, "; "))
	}
	return nil
}

// Check runs SQLite's full integrity check; "ok" means the file is sound.
func (s *SQL) Check(ctx context.Context) (string, error) {
	var res string
	err := s.db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res)
	return res, err
}

// retryBusy runs f again while SQLite answers SQLITE_BUSY, for up to 10 s. A connection's
// first statement on a new file switches it to WAL, which needs the file to itself and does
// not wait on the busy timeout: processes opening a new file together would fail at once.
func (s *SQL) retryBusy(ctx context.Context, f func() error) error {
	wait := 5 * time.Millisecond
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		var se *sqlite.Error
		if err == nil || s.dialect != sqliteDialect || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}
