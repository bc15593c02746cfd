package store

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

// A --db value is PostgreSQL in every form libpq takes, a file otherwise; another scheme is
// refused; a password is never repeated.
func TestDBValueForms(t *testing.T) {
	for _, tc := range []struct {
		db       string
		postgres bool
	}{
		{"postgres://hw:secret@db/helpwatch", true},
		{"POSTGRES://hw:secret@db/helpwatch", true},
		{"PostgreSQL://db/helpwatch?password=secret", true},
		{"host=db dbname=helpwatch user=hw password=secret", true},
		{"dbname=helpwatch password='se cret'", true},
		{"helpwatch.db", false},
		{"/var/lib/helpwatch/h.db", false},
		{"with=equals.db", false},
	} {
		if got := IsPostgresURL(tc.db); got != tc.postgres {
			t.Errorf("IsPostgresURL(%q) = %v", tc.db, got)
		}
		if strings.Contains(Redact(tc.db), "secret") || strings.Contains(Redact(tc.db), "se cret") {
			t.Errorf("Redact(%q) = %q", tc.db, Redact(tc.db))
		}
	}
	_, err := Open(context.Background(), "mysql://hw:secret@db/helpwatch")
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "postgres://") {
		t.Errorf("another scheme: %v", err)
	}
	if _, err := os.Stat("mysql:"); err == nil {
		t.Error("a file was made for a URL")
	}
}

// A new SQLite database, its WAL and shared memory are readable by their owner only.
func TestNewDatabaseFilesAreOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	db, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.DB().Exec(`INSERT INTO daily_counts (day, messages, names, findings, dropped) VALUES ('2026-12-05', 1, 1, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s is %v: readable by others", filepath.Base(f), perm)
		}
	}
}

// A libpq key=value string opens PostgreSQL.
func TestKeyValueDSNOpensPostgres(t *testing.T) {
	u, err := storetest.URL()
	if err != nil {
		t.Skip(storetest.SkipMessage(err))
	}
	cfg, err := pgxConfig(u)
	if err != nil {
		t.Fatal(err)
	}
	kv := "host=" + cfg.Host + " port=" + strconv.Itoa(int(cfg.Port)) + " dbname=" + cfg.Database + " user=" + cfg.User + " sslmode=disable"
	db, err := Open(context.Background(), kv)
	if err != nil {
		t.Fatalf("%s: %v", Redact(kv), err)
	}
	defer db.Close()
	if db.dialect != postgresDialect {
		t.Error("a key=value string opened SQLite")
	}
}
