// Package storetest gives tests a PostgreSQL database of their own: a throwaway schema in the
// server HELPWATCH_TEST_PG names (default: the local one, postgres://postgres@127.0.0.1:5432/test),
// dropped when the test ends. Tests that need PostgreSQL skip, saying so, when none answers.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// DefaultURL is tried when HELPWATCH_TEST_PG is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	probeOnce sync.Once
	probeURL  string
	probeErr  error
)

// URL returns the PostgreSQL server tests may use, or why there is none.
func URL() (string, error) {
	probeOnce.Do(func() {
		probeURL = os.Getenv("HELPWATCH_TEST_PG")
		if probeURL == "" {
			probeURL = DefaultURL
		}
		db, err := sql.Open("pgx", probeURL)
		if err != nil {
			probeErr = err
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		probeErr = db.PingContext(ctx)
	})
	return probeURL, probeErr
}

// Required reports whether PostgreSQL tests must run rather than skip (CI sets
// HELPWATCH_REQUIRE_PG=1 once it has started its own server).
func Required() bool { return os.Getenv("HELPWATCH_REQUIRE_PG") != "" }

// SkipMessage says why a PostgreSQL test did not run and how to make it run.
func SkipMessage(err error) string {
	u, _ := URL()
	return fmt.Sprintf("no PostgreSQL at %s (%v): set HELPWATCH_TEST_PG=postgres://USER@HOST:PORT/DB to run the PostgreSQL tests", redact(u), err)
}

// Schema creates a fresh schema and returns a URL whose connections use it; the schema is
// dropped when t ends. It skips t when no PostgreSQL answers.
func Schema(t testing.TB) string {
	t.Helper()
	base, err := URL()
	if err != nil {
		if Required() {
			t.Fatal("HELPWATCH_REQUIRE_PG is set but " + SkipMessage(err))
		}
		t.Skip(SkipMessage(err))
	}
	dsn, drop, err := NewSchema(base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	return dsn
}

// NewSchema creates a schema named helpwatch_test_<random> in the database at base and returns
// a URL that uses it, with a function that drops it.
func NewSchema(base string) (string, func(), error) {
	var b [6]byte
	rand.Read(b[:])
	name := "helpwatch_test_" + hex.EncodeToString(b[:])
	exec := func(stmt string) error {
		admin, err := sql.Open("pgx", base)
		if err != nil {
			return err
		}
		defer admin.Close()
		_, err = admin.Exec(stmt)
		return err
	}
	if err := exec(`CREATE SCHEMA ` + name); err != nil {
		return "", nil, fmt.Errorf("creating schema %s: %w", name, err)
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", nil, err
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	drop := func() { exec(`DROP SCHEMA ` + name + ` CASCADE`) }
	return u.String(), drop, nil
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Backend is the store backend tests open: "postgres" when HELPWATCH_STORE_BACKEND says so
// (CI runs the packages that use a store once more that way), else SQLite.
func Backend() string {
	if os.Getenv("HELPWATCH_STORE_BACKEND") == "postgres" {
		return "postgres"
	}
	return "sqlite"
}

// Where returns what to open as a test's store (store.Open): a file in a temporary
// directory, or with HELPWATCH_STORE_BACKEND=postgres a throwaway PostgreSQL schema (the test
// fails, not skips, when that PostgreSQL does not answer: it was asked for).
func Where(t testing.TB) string {
	t.Helper()
	if Backend() != "postgres" {
		return t.TempDir() + "/h.db"
	}
	if _, err := URL(); err != nil {
		t.Fatal("HELPWATCH_STORE_BACKEND=postgres but " + SkipMessage(err))
	}
	return Schema(t)
}
