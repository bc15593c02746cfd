package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Accounts: no console without one (the message says how to make it), passwords only from
// standard input and long enough, no name twice, a role required; list shows them.
func TestUsersAndServeNeedsAnAccount(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	if _, _, code := runCLI(t, "", "watch", "--source", "../../testdata/certstream_demo.jsonl", "--db", db, "--enrich=false", "--site-check=false"); code != 0 {
		t.Fatalf("watch exited %d", code)
	}
	_, stderr, code := runCLI(t, "", "serve", "--db", db, "--addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "no console account") || !strings.Contains(stderr, "users add NAME --role admin") {
		t.Errorf("serve without an account: %d %q", code, stderr)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"short\n", []string{"add", "jane", "--role", "admin"}, "12 to 256 characters"},
		{"a long enough password\n", []string{"add", "jane"}, "needs --role"},
		{"a long enough password\n", []string{"add", "jane", "--role", "root"}, "needs --role"},
		{"a long enough password\n", []string{"add", "bad name", "--role", "viewer"}, "without spaces"},
	} {
		_, stderr, code := runCLI(t, tc.stdin, append(append([]string{"users"}, tc.args...), "--db", db)...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("users %v: %d %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
	if out, stderr, code := runCLI(t, "a long enough password\n", "users", "add", "jane", "--role", "admin", "--db", db); code != 0 || !strings.Contains(out, "added as admin") {
		t.Fatalf("users add: %d %q %q", code, out, stderr)
	}
	if _, stderr, code := runCLI(t, "another long password\n", "users", "add", "jane", "--role", "viewer", "--db", db); code == 0 || !strings.Contains(stderr, "exists") {
		t.Errorf("a second jane: %d %q", code, stderr)
	}
	if _, _, code := runCLI(t, "", "users", "disable", "jane", "--db", db); code != 0 {
		t.Errorf("disable: %d", code)
	}
	out, _, _ := runCLI(t, "", "users", "list", "--db", db)
	if !strings.Contains(out, "jane  admin  disabled") || strings.Contains(out, "password") {
		t.Errorf("users list:\n%s", out)
	}
}

// findings fits the terminal: no row wider than it, the rules by name only, and every detail
// with --wide.
func TestFindingsFitTheTerminal(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	if _, _, code := runCLI(t, "", "watch", "--source", "../../testdata/certstream_demo.jsonl", "--db", db, "--enrich=false", "--site-check=false"); code != 0 {
		t.Fatalf("watch exited %d", code)
	}
	outputs := map[int]string{}
	for _, cols := range []int{80, 200} {
		t.Setenv("COLUMNS", itoa(cols))
		out, _, code := runCLI(t, "", "findings", "--db", db)
		if code != 0 {
			t.Fatal(code)
		}
		for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			if n := len([]rune(line)); n > cols {
				t.Errorf("%d columns: a row of %d: %q", cols, n, line)
			}
		}
		if !strings.Contains(out, "ijstart-canon-setup.online") || strings.Contains(out, "+30:") {
			t.Errorf("%d columns:\n%s", cols, out)
		}
		outputs[cols] = out
	}
	if outputs[80] == outputs[200] {
		t.Error("the table is the same at 80 and 200 columns")
	}
	wide, _, _ := runCLI(t, "", "findings", "--db", db, "--wide")
	if !strings.Contains(wide, "REGISTRAR") || !strings.Contains(wide, "+30: brand name appears as a word") {
		t.Errorf("--wide:\n%s", wide)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A drain whose lookups fail says why the jobs were retried, grouped by reason, and 'jobs'
// lists them with the next try. Every lookup goes to a resolver that refuses (nothing leaves
// the machine).
func TestDrainSaysWhyJobsWereRetried(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	if _, _, code := runCLI(t, "", "watch", "--source", "../../testdata/certstream_demo.jsonl", "--db", db, "--enrich=false", "--site-check=false"); code != 0 {
		t.Fatalf("watch exited %d", code)
	}
	_, stderr, _ := runCLI(t, "", "work", "--drain", "--kinds", "enrich", "--db", db, "--resolver", "127.0.0.1:9")
	if !strings.Contains(stderr, "why jobs were retried or failed") || !strings.Contains(stderr, "nothing answered") || !strings.Contains(stderr, "/NAME") {
		t.Errorf("work --drain:\n%s", stderr)
	}
	out, _, code := runCLI(t, "", "jobs", "--db", db)
	if code != 0 || !strings.Contains(out, "next try") || !strings.Contains(out, "enrich") {
		t.Errorf("jobs:\n%s", out)
	}
}
