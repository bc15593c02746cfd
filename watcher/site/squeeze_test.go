package site

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/testkit"
)

const scamPage = `<html><head><title>HP Printer Support</title></head><body>
<h1>HP printer offline? Printer not printing?</h1>
<p>Call our HP printer support experts now, toll free 24x7: <a href="tel:+18005550199">1-800-555-0199</a>.
Our technicians connect remotely to fix driver errors and installation failed messages.</p></body></html>`

// padded puts n bytes of padding of kind before the scam page.
func padded(kind string, n int) []byte {
	var b bytes.Buffer
	b.WriteString("<!doctype html>")
	switch kind {
	case "comment":
		b.WriteString("<!--")
		b.Write(bytes.Repeat([]byte("x"), n))
		b.WriteString("-->")
	case "blank":
		b.Write(bytes.Repeat([]byte(" \n"), n/2))
	}
	b.WriteString(scamPage)
	return b.Bytes()
}

// A scam page behind megabytes of comments or blank space is judged on its content and on
// its padding, live and from a file; an ordinary page's short comments and indentation are
// kept byte for byte.
func TestPaddedPageIsJudgedOnItsContent(t *testing.T) {
	rs := testkit.DefaultRules(t)
	for _, kind := range []string{"comment", "blank"} {
		body := padded(kind, 3<<20)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write(body)
		}))
		f := &Fetcher{Guard: onlyLocal127001, Timeout: 10 * time.Second}
		rep, got := CheckLive(t.Context(), rs, nil, f, nil, srv.URL+"/")
		srv.Close()
		if !flagged(rep) || got.Padding < 3<<20-10 || got.Truncated || !hasRule(rep, "site:padding") {
			t.Errorf("%s padding, live: %s score %d, padding %d, truncated %v, reasons %v", kind, rep.Verdict, rep.Score, got.Padding, got.Truncated, rep.Reasons)
		}
		path := filepath.Join(t.TempDir(), "page.html")
		os.WriteFile(path, body, 0o600)
		saved, cut, err := ReadSaved(path)
		if err != nil {
			t.Fatal(err)
		}
		if rep := AnalyzeFile(rs, nil, "printer-help.example", path, saved, cut); !flagged(rep) || !hasRule(rep, "site:padding") {
			t.Errorf("%s padding, file: %s %v", kind, rep.Verdict, rep.Reasons)
		}
	}
	// Content past the limit even without padding: said in the reasons, not taken for benign.
	long := append([]byte("<html><body>"), bytes.Repeat([]byte("<p>ordinary words about gardening</p>\n"), 80_000)...)
	body, cut, err := readSqueezed(bytes.NewReader(long), 2<<20)
	if err != nil || !cut.Truncated || len(body) != 2<<20 {
		t.Fatalf("a long page: %d bytes, %+v, %v", len(body), cut, err)
	}
	if rep := AnalyzeCut(rs, nil, "garden.example", body, true, nil, cut); !hasRule(rep, "site:cut") || !strings.Contains(strings.Join(rep.Indicate, ","), "cut") {
		t.Errorf("a cut page: %v %v", rep.Reasons, rep.Indicate)
	}
	// An ordinary page is read exactly as it is.
	ordinary := []byte("<html>\n  <!-- nav -->\n    <body>\n\t\t<p>hello</p>   </body></html>")
	if got, cut, _ := readSqueezed(bytes.NewReader(ordinary), 2<<20); !bytes.Equal(got, ordinary) || cut.Padding != 0 {
		t.Errorf("an ordinary page was changed: %q %+v", got, cut)
	}
}

func flagged(rep *Report) bool {
	return rep.Verdict == rules.SiteHelpline || rep.Verdict == rules.SiteClone
}

func hasRule(rep *Report, rule string) bool {
	for _, r := range rep.Reasons {
		if r.Rule == rule {
			return true
		}
	}
	return false
}

// FuzzReadSqueezed: any input gives at most the limit, padding never counted past the input,
// and an input with no long comment or blank run comes back unchanged.
func FuzzReadSqueezed(f *testing.F) {
	f.Add([]byte("<html><!-- short --><p>x</p></html>"), uint16(64))
	f.Add(append([]byte("<!--"), bytes.Repeat([]byte("-"), 600)...), uint16(100))
	f.Add(bytes.Repeat([]byte(" "), 1000), uint16(10))
	f.Add([]byte("<!--->--><!-- -- >-->"), uint16(8))
	f.Fuzz(func(t *testing.T, in []byte, limit uint16) {
		lim := int64(limit%4096) + 1
		out, cut, err := readSqueezed(bytes.NewReader(in), lim)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(out)) > lim || cut.Padding > int64(len(in)) {
			t.Fatalf("out %d > limit %d, or padding %d > input %d", len(out), lim, cut.Padding, len(in))
		}
		if cut.Padding == 0 && int64(len(in)) <= lim && !bytes.Equal(out, in) {
			t.Fatalf("changed without padding: %q -> %q", in, out)
		}
	})
}
