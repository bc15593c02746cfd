package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// IsPostgresURL reports whether a --db value names a PostgreSQL database: a postgres:// or
// postgresql:// URL, the scheme in any case, or a libpq key=value string
// ("host=db dbname=helpwatch user=hw").
func IsPostgresURL(s string) bool {
	lower := strings.ToLower(strings.TrimSpace(s))
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") || isKeyValueDSN(s)
}

// libpqKeys are the connection parameters that mark a libpq key=value string.
var libpqKeys = []string{"host", "hostaddr", "port", "dbname", "user", "password", "passfile", "sslmode", "sslrootcert",
	"sslcert", "sslkey", "connect_timeout", "application_name", "service", "target_session_attrs", "options"}

// isKeyValueDSN: every space-separated field is key=value, and at least one key is libpq's.
func isKeyValueDSN(s string) bool {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return false
	}
	known := false
	for _, f := range fields {
		key, _, ok := strings.Cut(f, "=")
		if !ok {
			// A quoted value with a space ('a b') splits into fields without "=": allowed
			// after a first key=value.
			if !known {
				return false
			}
			continue
		}
		if slices.Contains(libpqKeys, strings.ToLower(strings.TrimSpace(key))) {
			known = true
		}
	}
	return known
}

// Open opens the store --db names: a PostgreSQL URL or key=value string (a team's shared
// PostgreSQL), or a file path (the embedded SQLite default). Another URL scheme is refused
// rather than taken for a file name.
func Open(ctx context.Context, db string, opts ...Options) (*SQL, error) {
	if IsPostgresURL(db) {
		return OpenPostgres(ctx, db, opts...)
	}
	if scheme, _, ok := strings.Cut(db, "://"); ok && !strings.ContainsAny(scheme, "/\\") {
		return nil, fmt.Errorf("--db %q: not a database this can open: give a file path (SQLite) or a postgres:// URL", Redact(db))
	}
	return OpenSQLite(ctx, db, opts...)
}

var keyValuePassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// Redact returns a --db value without its password, for messages: a credential is never
// echoed, in a URL (user:password@, ?password=) or a key=value string.
func Redact(dsn string) string {
	if !strings.Contains(dsn, "://") {
		return keyValuePassword.ReplaceAllString(dsn, "${1}xxxxx")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		scheme, _, _ := strings.Cut(dsn, "://")
		return strings.ToLower(scheme) + "://(unparsable URL)"
	}
	if _, has := u.User.Password(); u.User != nil && has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	for k := range q {
		if strings.EqualFold(k, "password") {
			q.Set(k, "xxxxx")
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// migrationLock is the advisory lock key two processes starting together take before they
// migrate: one applies the migrations, the other waits and finds them applied.
const migrationLock = 0x68656c70 // "help"

// OpenPostgres connects to the PostgreSQL database at dsn (a postgres:// URL; the password,
// when the URL has none, from PGPASSWORD or the password file PGPASSFILE or ~/.pgpass names;
// TLS as sslmode= asks) and brings its schema up to date under an advisory lock. Reads and
// writes share one pool: PostgreSQL runs them side by side.
func OpenPostgres(ctx context.Context, dsn string, opts ...Options) (*SQL, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	name := Redact(dsn)
	cfg, err := pgxConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", name, err)
	}
	db := stdlib.OpenDB(*cfg)
	// Reads and writes share the pool. Workers hold a connection only while they read or
	// write, not while they look a name up, so a few serve a process's 24 workers; a team of an
	// ingest and a few workers stays well under PostgreSQL's 100 connections.
	n := o.ReadConns
	if n <= 0 {
		n = 12
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot reach the PostgreSQL database %s: %w", name, err)
	}
	s := &SQL{db: db, read: db, path: name, dialect: postgresDialect, opts: o}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: waiting for the migration lock: %w", name, err)
	}
	err = s.migrate(ctx, postgresMigrations, nil)
	conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLock)
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := s.resolveRules(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Closer of the sql.DB behind a store, for tests and benchmarks that drop a schema.
func (s *SQL) DB() *sql.DB { return s.db }
