package main

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// hostileMessage is a certstream message whose every certificate field carries what an
// attacker who controls a certificate (or a hostile certstream server) can put there: ESC
// sequences, NUL, CR and LF, a right-to-left override, invalid UTF-8, and spreadsheet formulas
// in ASCII and fullwidth forms.
const hostileMessage = `{"message_type":"certificate_update","data":{"cert_index":77,` +
	`"cert_link":"https://log.test/\r\nX-Injected: 1\u0000",` +
	`"leaf_cert":{"all_domains":["hp-printer-setup-help.com"],"fingerprint":"AB:\u001b[2J:\u202eCD:` + "\xff\xfe" + `",` +
	`"issuer":{"O":"=HYPERLINK(\"http://evil.test\")","CN":"\uff1dcmd|' /C calc'!A0\u202e\u0007"},` +
	`"not_before":1795773600,"not_after":1803549600,"subject":{"CN":"hp-printer-setup-help.com"}},` +
	`"seen":1795777200,"source":{"name":"+Evil\u001b]0;pwned\u0007 log\u0085\u2028","url":"@https://log.test/` + "\xc3\x28" + `"}}}`

func TestHostileCertificateFieldsInEveryFormat(t *testing.T) {
	dir := t.TempDir()
	replay := filepath.Join(dir, "hostile.jsonl")
	if err := os.WriteFile(replay, []byte(hostileMessage+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "h.db")
	out, stderr, code := runCLI(t, "", "watch", "--enrich=false", "--site-check=false", "--source", replay, "--db", db)
	if code != 0 || !strings.Contains(out, "hp-printer-setup-help.com") {
		t.Fatalf("watch: exit %d\n%s\n%s", code, out, stderr)
	}
	assertSafeText(t, "watch jsonl", out)

	// The store keeps only clean text.
	st, err := store.OpenSQLite(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := st.Cases(context.Background(), store.Query{})
	st.Close()
	if err != nil || len(cs) != 1 {
		t.Fatalf("stored: %v %d", err, len(cs))
	}
	c := cs[0].Cert
	if !strings.Contains(c.Issuer, "HYPERLINK") || !strings.Contains(c.LogName, "Evil") || c.Index != 77 {
		t.Errorf("the certificate was not kept (cleaned): %+v", c)
	}
	for _, v := range []string{c.LogName, c.LogURL, c.Link, c.Issuer, c.Fingerprint} {
		assertSafeText(t, "stored field", v)
		if strings.Contains(v, "\n") {
			t.Errorf("stored field %q has a line break", v)
		}
	}

	for _, format := range []string{"table", "csv", "jsonl"} {
		out, stderr, code := runCLI(t, "", "findings", "--db", db, "--format", format)
		if code != 0 {
			t.Fatalf("findings --format %s: %s", format, stderr)
		}
		assertSafeText(t, "findings "+format, out)
		if format == "csv" {
			assertSafeCSV(t, "findings csv", out)
		}
		if !strings.Contains(out, "hp-printer-setup-help.com") {
			t.Errorf("findings %s lost the finding:\n%s", format, out)
		}
	}
	for _, format := range []string{"html", "md", "csv", "json"} {
		out, stderr, code := runCLI(t, "", "report", "--db", db, "--format", format, "--no-record")
		if code != 0 {
			t.Fatalf("report --format %s: %s", format, stderr)
		}
		assertSafeText(t, "report "+format, out)
		if format == "csv" {
			assertSafeCSV(t, "report csv", out)
		}
	}
}

// assertSafeText: valid UTF-8, and no control character but the line feed, no bidirectional
// control, no line or paragraph separator.
func assertSafeText(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Errorf("%s: invalid UTF-8", what)
	}
	for _, r := range s {
		if r != '\n' && watcher.Unsafe(r) {
			t.Errorf("%s: unsafe character %U in output", what, r)
			return
		}
	}
}

// assertSafeCSV: no cell a spreadsheet would run as a formula.
func assertSafeCSV(t *testing.T, what, s string) {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, row := range rows {
		for _, cell := range row {
			if cell == "" {
				continue
			}
			r, _ := utf8.DecodeRuneInString(cell)
			if strings.ContainsRune("=+-@\t\r\uff1d\uff0b\uff0d\uff20", r) {
				t.Errorf("%s: cell %q would run as a formula", what, cell)
			}
		}
	}
}
