package store

import (
	"github.com/jackc/pgx/v5"
)

// pgxConfig parses a PostgreSQL URL with pgx's rules (libpq's: sslmode, PGPASSWORD,
// PGPASSFILE, ~/.pgpass, PGSSLROOTCERT, ...).
func pgxConfig(dsn string) (*pgx.ConnConfig, error) {
	return pgx.ParseConfig(dsn)
}
