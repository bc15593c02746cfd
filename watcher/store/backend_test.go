package store

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

// The store's behaviour tests run twice: on SQLite, and then, in a child process of this test
// binary, on PostgreSQL when one answers (HELPWATCH_TEST_PG, default the local server). One
// Store contract, one set of tests, two implementations.
var backend = os.Getenv("HELPWATCH_STORE_BACKEND")

func TestMain(m *testing.M) {
	if dir := os.Getenv(openerEnv); dir != "" {
		os.Exit(runOpener(dir))
	}
	code := m.Run()
	if backend != "" {
		os.Exit(code)
	}
	if _, err := storetest.URL(); err != nil {
		if storetest.Required() {
			fmt.Println("HELPWATCH_REQUIRE_PG is set but", storetest.SkipMessage(err))
			os.Exit(1)
		}
		fmt.Println("store tests ran on SQLite only:", storetest.SkipMessage(err))
		os.Exit(code)
	}
	child := exec.Command(os.Args[0], os.Args[1:]...)
	child.Env = append(os.Environ(), "HELPWATCH_STORE_BACKEND=postgres")
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	fmt.Println("store tests on PostgreSQL:")
	if err := child.Run(); err != nil && code == 0 {
		code = 1
	}
	os.Exit(code)
}

func onPostgres() bool { return backend == "postgres" }

// sqliteOnly skips tests of what only the SQLite store has (its old schema, its file).
func sqliteOnly(t testing.TB, why string) {
	t.Helper()
	if onPostgres() {
		t.Skip("SQLite only: " + why)
	}
}

// openTemp opens an empty store of the backend under test; the second value reopens it (a
// file path, or a PostgreSQL URL).
func openTemp(t testing.TB) (*SQL, string) {
	t.Helper()
	where := filepath.Join(t.TempDir(), "h.db")
	if onPostgres() {
		where = storetest.Schema(t)
	}
	s, err := Open(context.Background(), where)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, where
}
