package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersionAndHelpForms(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		out, _, code := runCLI(t, "", args...)
		if code != 0 || !strings.HasPrefix(out, "helpwatch ") || !strings.Contains(out, "default rules") {
			t.Errorf("%v: exit %d %q", args, code, out)
		}
	}
	for _, args := range [][]string{{"refs", "--help"}, {"refs", "-h"}, {"abuse", "--help"}, {"rules", "--help"}, {"site", "check", "--help"}} {
		_, stderr, code := runCLI(t, "", args...)
		if code != 0 || !strings.Contains(stderr, "usage: helpwatch") {
			t.Errorf("%v: exit %d\n%s", args, code, stderr)
		}
	}
	if _, stderr, code := runCLI(t, "", "refs", "frob"); code != 2 || !strings.Contains(stderr, "unknown refs subcommand") {
		t.Errorf("refs frob: exit %d %s", code, stderr)
	}
}

// A missing input file is reported once, the other files are still scored, the exit is 1.
func TestScoreMissingFileReportedOnce(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "names.txt")
	os.WriteFile(good, []byte("hp-printer-help.com\n"), 0o644)
	missing := filepath.Join(dir, "missing.txt")
	out, stderr, code := runCLI(t, "", "score", missing, good)
	if code != 1 || strings.Count(stderr, "missing.txt") != 1 || !strings.Contains(out, "hp-printer-help.com") {
		t.Errorf("exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	// An empty table still has its header.
	out, _, code = runCLI(t, "", "score", "--format", "table", filepath.Join(dir, "none.txt"))
	if code != 1 || !strings.HasPrefix(out, "VERDICT") {
		t.Errorf("empty table: exit %d %q", code, out)
	}
}

func TestFindingsAndReportArgumentErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	if _, stderr, code := runCLI(t, "", "watch", "--enrich=false", "--site-check=false", "--source", demoFile(t), "--db", db); code != 0 {
		t.Fatal(stderr)
	}
	// An unknown brand is an error that lists the brands; the brand's case does not matter.
	for _, args := range [][]string{{"findings", "--db", db, "--brand", "hpp"}, {"report", "--db", db, "--brand", "cannon", "--no-record"}} {
		_, stderr, code := runCLI(t, "", args...)
		if code != 2 || !strings.Contains(stderr, "no such brand") || !strings.Contains(stderr, "Canon") || !strings.Contains(stderr, "HP") {
			t.Errorf("%v: exit %d %s", args, code, stderr)
		}
	}
	if out, _, code := runCLI(t, "", "findings", "--db", db, "--brand", "Canon"); code != 0 || !strings.Contains(out, "ijstart-canon-setup.online") {
		t.Errorf("--brand Canon: exit %d\n%s", code, out)
	}
	// No match: the header, and a line saying so with how many are stored.
	out, stderr, code := runCLI(t, "", "findings", "--db", db, "--since", "2099-01-01")
	if code != 0 || !strings.HasPrefix(out, "SCORE  PTS VERDICT DOMAIN") || !strings.Contains(stderr, "no findings match (11 stored") {
		t.Errorf("empty findings: exit %d %q %q", code, out, stderr)
	}
	if _, stderr, code := runCLI(t, "", "report", "--db", db, "--date", "2026-11-26", "--since", "24h"); code != 2 || !strings.Contains(stderr, "--date and --since") {
		t.Errorf("--date with --since: exit %d %s", code, stderr)
	}
}

// rules diff takes the form the README shows, with a plain list of names as the corpus.
func TestRulesDiffWithPlainNameList(t *testing.T) {
	dir := t.TempDir()
	names := filepath.Join(dir, "names.txt")
	os.WriteFile(names, []byte("hp-printer-help.com\nphp.net\n"), 0o644)
	out, stderr, code := runCLI(t, "", "rules", "diff", "default", "default", "--corpus", names)
	if code != 0 || !strings.Contains(out, "names.txt") || !strings.Contains(out, "names ") {
		t.Errorf("exit %d\n%s\n%s", code, out, stderr)
	}
}

// enrich NAME... looks names up in parallel and prints them in the order given; a name that no
// source could answer for makes the exit non-zero and says why.
func TestEnrichNamesInOrderAndFailures(t *testing.T) {
	world := lookupWorld(t)
	names := []string{"hp-printer-setup-help.com", "canon-printer-support-number.com", "epsonconnect-setup-help.info", "lexmark-printer-helpdesk.com"}
	out, stderr, code := runCLI(t, "", append(append([]string{"enrich"}, world...), names...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		got = append(got, rec.Name)
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("order %v, want %v", got, names)
	}
	// Nothing answers: DNS to a closed port, registration lookups refused by the guard.
	out, stderr, code = runCLI(t, "", "enrich", "--resolver", "127.0.0.1:1", "--rdap-bootstrap", world[3], "--whois-server", "127.0.0.1:1",
		"--lookup-timeout", "300ms", "hp-printer-setup-help.com")
	if code != 1 || !strings.Contains(stderr, "every lookup failed") || !strings.Contains(out, "hp-printer-setup-help.com") {
		t.Errorf("nothing answers: exit %d\n%s\n%s", code, out, stderr)
	}
}

func TestSelfCommandForHints(t *testing.T) {
	old := os.Args[0]
	defer func() { os.Args[0] = old }()
	os.Args[0] = "/tmp/go-build123456/b001/exe/helpwatch"
	if got := selfCommand(); got != "go run ./cmd/helpwatch" {
		t.Errorf("go run: %q", got)
	}
	os.Args[0] = "helpwatch"
	if got := selfCommand(); got != "helpwatch" {
		t.Errorf("on the PATH: %q", got)
	}
	os.Args[0] = "./bin/helpwatch"
	if got := selfCommand(); got != "./bin/helpwatch" {
		t.Errorf("a path: %q", got)
	}
}
