package store

import (
	"strings"

	"github.com/jackc/pgx/v5"
)

// pgxConfig parses a PostgreSQL URL with pgx's rules (libpq's: sslmode, PGPASSWORD,
// PGPASSFILE, ~/.pgpass, PGSSLROOTCERT, ...).
// The scheme may come in any case (URL schemes are case-insensitive); pgx wants it lower.
func pgxConfig(dsn string) (*pgx.ConnConfig, error) {
	if scheme, rest, ok := strings.Cut(dsn, "://"); ok {
		dsn = strings.ToLower(scheme) + "://" + rest
	}
	return pgx.ParseConfig(dsn)
}
