package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	old := os.Stdin
	if stdin != "" {
		f, err := os.CreateTemp(t.TempDir(), "stdin")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(stdin)
		f.Seek(0, 0)
		os.Stdin = f
		defer func() { os.Stdin = old; f.Close() }()
	}
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return out.String(), errb.String(), code
}

const scoreInput = "# a comment\nhpprintersupportnumbers.com\n\nphp.net\na..b\nbad name.com\n" + "\n"

func TestScoreJSONL(t *testing.T) {
	out, errOut, code := runCLI(t, scoreInput, "score")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 records (comments and blanks skipped), got %d:\n%s", len(lines), out)
	}
	type rec struct {
		Domain, Registrable, Verdict, Brand, Error string
		Score                                      int
		Reasons                                    []struct {
			Rule   string
			Points int
			Detail string
		}
	}
	var recs []rec
	for _, l := range lines {
		var r rec
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("bad JSON %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	if recs[0].Domain != "hpprintersupportnumbers.com" || recs[0].Verdict != "alert" || recs[0].Brand != "HP" || len(recs[0].Reasons) == 0 || recs[0].Registrable != "hpprintersupportnumbers.com" {
		t.Errorf("first record: %+v", recs[0])
	}
	if recs[1].Domain != "php.net" || recs[1].Verdict != "ignore" || recs[1].Brand != "" {
		t.Errorf("second record: %+v", recs[1])
	}
	for _, r := range recs[2:] {
		if r.Verdict != "invalid" || r.Error == "" {
			t.Errorf("bad line must be invalid with an error: %+v", r)
		}
	}
}

func TestScoreCSVAndTable(t *testing.T) {
	out, _, code := runCLI(t, scoreInput, "score", "--format", "csv")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 5 || rows[0][0] != "domain" || rows[1][3] != "alert" {
		t.Fatalf("csv: %v %q", err, rows)
	}
	out, _, code = runCLI(t, scoreInput, "score", "--format", "table")
	if code != 0 || !strings.Contains(out, "VERDICT") || !strings.Contains(out, "hpprintersupportnumbers.com") || !strings.Contains(out, "error: empty label") {
		t.Fatalf("table (exit %d):\n%s", code, out)
	}
	if _, errOut, code := runCLI(t, scoreInput, "score", "--format", "xml"); code != 2 || !strings.Contains(errOut, "unknown format") {
		t.Fatalf("bad format: exit %d %s", code, errOut)
	}
}

func TestScoreFilesAndLongLines(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.txt")
	os.WriteFile(a, []byte("canon.net\n"+strings.Repeat("x", 10000)+"\nlexmrak.com\n"), 0o644)
	out, errOut, code := runCLI(t, "", "score", a, filepath.Join(dir, "missing.txt"))
	if code != 1 || !strings.Contains(errOut, "missing.txt") {
		t.Fatalf("missing file must be reported with its name and a non-zero exit: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "line longer than") || !strings.Contains(lines[2], "lexmrak.com") {
		t.Fatalf("an over-long line is one invalid record and the run goes on:\n%s", out)
	}
}

func TestRulesLintAndExplain(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("version: x\nthresholds: {alert: 50, watch: 30}\nbogus: 1\nbrands: [{name: A, tokens: [abcde]}]\n"), 0o644)
	out, _, code := runCLI(t, "", "rules", "lint", bad)
	if code != 1 || !strings.Contains(out, "bad.yaml:3") {
		t.Fatalf("lint must name file and line (exit %d):\n%s", code, out)
	}
	good := filepath.Join(dir, "good.yaml")
	d, _, _ := runCLI(t, "", "rules", "show")
	os.WriteFile(good, []byte(d), 0o644)
	if out, _, code := runCLI(t, "", "rules", "lint", good); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("default rules must lint clean (exit %d): %s", code, out)
	}
	out, _, code = runCLI(t, "", "rules", "explain", "lexmrak.com", "hp.com")
	if code != 0 || !strings.Contains(out, "brand-typo") || !strings.Contains(out, "brand-owned") {
		t.Fatalf("explain (exit %d):\n%s", code, out)
	}
	if _, errOut, code := runCLI(t, "", "score", "--rules", bad); code != 1 || !strings.Contains(errOut, "bad.yaml:3") {
		t.Fatalf("--rules with a bad file: exit %d %s", code, errOut)
	}
}

func TestRulesTestGates(t *testing.T) {
	dir := t.TempDir()
	pos := filepath.Join(dir, "pos.txt")
	neg := filepath.Join(dir, "neg.tsv")
	os.WriteFile(pos, []byte("hpprintersupportnumbers.com\nepson-printer-offline.com\nexample.org\n"), 0o644)
	os.WriteFile(neg, []byte("domain\tnote\nphp.net\tphp\nhp.com\tbrand\nhp-support.com\toops\n"), 0o644)
	out, _, code := runCLI(t, "", "rules", "test", "--positives", pos, "--negatives", neg)
	if code != 0 || !strings.Contains(out, "example.org") || !strings.Contains(out, "hp-support.com") || !strings.Contains(out, "rules fired") {
		t.Fatalf("report must list misses and rule counts (exit %d):\n%s", code, out)
	}
	out, _, code = runCLI(t, "", "rules", "test", "--positives", pos, "--min-recall", "0.9")
	if code != 1 || !strings.Contains(out, "GATE FAILED") {
		t.Fatalf("recall 2/3 < 0.9 must fail (exit %d):\n%s", code, out)
	}
	out, _, code = runCLI(t, "", "rules", "test", "--negatives", neg, "--max-alert-rate", "0.5", "--quiet")
	if code != 0 || !strings.Contains(out, "all gates passed") {
		t.Fatalf("1/3 alerts <= 0.5 must pass (exit %d):\n%s", code, out)
	}
}

func TestUsage(t *testing.T) {
	if _, _, code := runCLI(t, "", "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if out, _, code := runCLI(t, "", "--help"); code != 0 || !strings.Contains(out, "score") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
}
