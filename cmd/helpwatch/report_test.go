package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// From a watch to the report and the abuse outbox, through the commands. The demo's
// certificates are logged on 2026-11-27 (one has no CT time and counts from when it was read);
// the report's and the abuse run's clocks are fixed to the day after.
func TestReportAndAbuseCommands(t *testing.T) {
	oldReport, oldAbuse := reportNow, abuseNow
	reportNow = func() time.Time { return time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC) }
	abuseNow = reportNow
	defer func() { reportNow, abuseNow = oldReport, oldAbuse }()
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	if _, stderr, code := runCLI(t, "", "watch", "--enrich=false", "--site-check=false", "--source", demoFile(t), "--db", db); code != 0 {
		t.Fatalf("watch: %s", stderr)
	}
	if _, stderr, code := runCLI(t, "", append([]string{"enrich", "--queue", "--db", db}, lookupWorld(t)...)...); code != 0 {
		t.Fatalf("enrich: %s", stderr)
	}

	html := filepath.Join(dir, "daily.html")
	_, stderr, code := runCLI(t, "", "report", "--db", db, "--out", html)
	if code != 0 || !strings.Contains(stderr, "report written to") {
		t.Fatalf("report: exit %d %s", code, stderr)
	}
	page, _ := os.ReadFile(html)
	if !strings.Contains(string(page), "<!DOCTYPE html>") || !strings.Contains(string(page), "hp-printer-setup-help.com") {
		t.Errorf("HTML report:\n%.500s", page)
	}
	md, _, _ := runCLI(t, "", "report", "--db", db, "--brand", "canon", "--no-record")
	if !strings.Contains(md, "# helpwatch daily report: Canon") && !strings.Contains(md, "# helpwatch daily report: canon") || strings.Contains(md, "hp-printer") {
		t.Errorf("Markdown report for canon:\n%s", md)
	}
	csv, _, _ := runCLI(t, "", "report", "--db", db, "--format", "csv", "--no-record")
	if strings.Count(csv, "\n") != 11 {
		t.Errorf("CSV report has %d lines, want header + 10 cases of the CT day", strings.Count(csv, "\n"))
	}
	for _, args := range [][]string{{"report", "--db", db, "--format", "pdf"}, {"report", "--db", db, "--date", "26/11/2026"}} {
		if _, _, code := runCLI(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}

	// Abuse: no reporter file is a clear error; with one, messages are prepared.
	outbox := filepath.Join(dir, "outbox")
	_, stderr, code = runCLI(t, "", "abuse", "prepare", "--db", db, "--outbox", outbox, "--reporter", filepath.Join(dir, "none.yaml"))
	if code != 1 || !strings.Contains(stderr, "none.yaml") {
		t.Errorf("missing reporter: exit %d %s", code, stderr)
	}
	rep := filepath.Join(dir, "reporter.yaml")
	os.WriteFile(rep, []byte("name: Jane Analyst\norganization: Imaging Supplies Coalition\nemail: bp@coalition.test\n"), 0o644)
	// Nothing was seen on any site: nothing is reported, and each case says why.
	out, stderr, code := runCLI(t, "", "abuse", "prepare", "--db", db, "--outbox", outbox, "--reporter", rep)
	if code != 0 || strings.Contains(out, "drafted") || !strings.Contains(out, "not reportable yet hp-printer-setup-help.com: only the name") {
		t.Fatalf("prepare with no observed abuse: exit %d\n%s\n%s", code, out, stderr)
	}
	// An analyst's scam label makes a case reportable; the draft waits for approval.
	if _, stderr, code := runCLI(t, "", "label", "--db", db, "--by", "jane", "hp-printer-setup-help.com", "scam", "--note", "called the number: a fake HP support line"); code != 0 {
		t.Fatalf("label: %s", stderr)
	}
	out, stderr, code = runCLI(t, "", "abuse", "prepare", "--db", db, "--outbox", outbox, "--reporter", rep, "--to", "registrar")
	if code != 0 || !strings.Contains(out, "drafted #") || !strings.Contains(out, "abuse@registrar.test") {
		t.Fatalf("prepare: exit %d\n%s\n%s", code, out, stderr)
	}
	out, _, code = runCLI(t, "", "abuse", "send", "--db", db, "--dry-run")
	if code != 0 || !strings.Contains(out, "no approved reports") {
		t.Errorf("dry run before approval: exit %d\n%s", code, out)
	}

	list, _, _ := runCLI(t, "", append([]string{"abuse", "status", "--db", db}, lookupWorld(t)...)...)
	num := strings.TrimPrefix(strings.Fields(list)[0], "#")

	if out, stderr, code := runCLI(t, "", "abuse", "approve", "--db", db, num); code != 0 || !strings.Contains(out, "approved 1") {
		t.Fatalf("approve %s: exit %d %s %s", num, code, out, stderr)
	}
	out, _, code = runCLI(t, "", "abuse", "send", "--db", db, "--dry-run")
	if code != 0 || !strings.Contains(out, "would send #"+num) {
		t.Errorf("dry run: exit %d\n%s", code, out)
	}
	if _, _, code := runCLI(t, "", "abuse", "send", "--db", db); code != 2 {
		t.Errorf("send without --smtp: exit %d, want 2", code)
	}
	if _, stderr, code := runCLI(t, "", append([]string{"abuse", "status", "--db", db}, lookupWorld(t)...)...); code != 0 || !strings.Contains(stderr, "checked 0") {
		t.Errorf("status with nothing sent: exit %d %s", code, stderr)
	}
	if _, _, code := runCLI(t, "", "abuse", "frobnicate"); code != 2 {
		t.Errorf("unknown abuse subcommand: exit %d", code)
	}
}
