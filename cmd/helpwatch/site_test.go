package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
	"github.com/helpwatch/helpwatch/watcher/netguard"
	"github.com/helpwatch/helpwatch/watcher/site"
)

func TestSiteCheckCommand(t *testing.T) {
	page, err := os.ReadFile("../../testdata/site/clone.html")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(page) }))
	defer srv.Close()
	// A live check (loopback allowed for the test), a saved page, and a refused private address.
	out, stderr, code := runCLI(t, "", "site", "check", "--allow-private", srv.URL+"/setup",
		"--file", "../../testdata/site/helpline.html", "--domain", "canon-printer-support-247.com")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	type siteReport struct {
		Domain  string `json:"domain"`
		Verdict string `json:"verdict"`
		Score   int    `json:"content_score"`
		Brand   string `json:"brand"`
		Phones  []struct {
			E164     string `json:"e164"`
			TollFree bool   `json:"toll_free"`
			Source   string `json:"source"`
		} `json:"phones"`
		Indicators []string `json:"indicators"`
		Reasons    []any    `json:"reasons"`
	}
	var reps []siteReport
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var one siteReport
		if err := json.Unmarshal([]byte(line), &one); err != nil {
			t.Fatalf("bad JSON %q: %v", line, err)
		}
		reps = append(reps, one)
	}
	if len(reps) != 2 {
		t.Fatalf("%d reports:\n%s", len(reps), out)
	}
	// Saved pages are printed first, then the live checks.
	if reps[0].Domain != "canon-printer-support-247.com" || reps[0].Verdict != "helpline" || reps[0].Brand != "Canon" {
		t.Errorf("saved page: %+v", reps[0])
	}
	live := reps[1]
	if live.Verdict != "clone" || live.Score == 0 || len(live.Phones) != 1 || !live.Phones[0].TollFree || live.Phones[0].Source != "tel" || len(live.Reasons) == 0 {
		t.Errorf("live check: %+v", live)
	}
	// Without --allow-private the guard refuses the loopback server: unreachable, with why,
	// and exit 4. --allow-host lets exactly that server through.
	out, stderr, code = runCLI(t, "", "site", "check", srv.URL+"/")
	if code != 4 || !strings.Contains(out, `"verdict":"unreachable"`) || !strings.Contains(out, "refusing to connect") || !strings.Contains(stderr, "--allow-host") {
		t.Errorf("guarded check: exit %d %s %s", code, out, stderr)
	}
	if out, _, code := runCLI(t, "", "site", "check", "--allow-host", srv.Listener.Addr().String(), srv.URL+"/"); code != 0 || !strings.Contains(out, `"verdict":"clone"`) {
		t.Errorf("--allow-host: exit %d %s", code, out)
	}
	// Nothing listens: unreachable, exit 3.
	if _, stderr, code := runCLI(t, "", "site", "check", "--allow-host", "127.0.0.1:1", "http://127.0.0.1:1/"); code != 3 || !strings.Contains(stderr, "could not be reached") {
		t.Errorf("closed port: exit %d %s", code, stderr)
	}
	if _, _, code := runCLI(t, "", "site", "check"); code != 2 {
		t.Errorf("no targets: exit %d", code)
	}
	// site test on the fixtures, with gates.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bakery.html"), []byte("<html><body>Fresh bread. Call now (212) 555-0187.</body></html>"), 0o644)
	out, _, code = runCLI(t, "", "site", "test", "--scam", "../../testdata/site/clone.html", "--scam", "../../testdata/site/fake-error.jsx",
		"--benign", dir, "--min-recall", "1", "--max-flag-rate", "0")
	if code != 0 || !strings.Contains(out, "scam pages: 2, clone or helpline 2") {
		t.Errorf("site test: exit %d\n%s", code, out)
	}
	if _, stderr, code := runCLI(t, "", "campaigns", "--db", filepath.Join(dir, "missing.db")); code != 1 || !strings.Contains(stderr, "missing.db") {
		t.Errorf("campaigns without a database: exit %d %s", code, stderr)
	}
}

// After a replay, the queued site checks run from the command. Every name is sent to a local
// server (nothing leaves the machine), which serves the clone fixture.
func TestSiteCheckQueueCommand(t *testing.T) {
	page, err := os.ReadFile("../../testdata/site/clone.html")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(page) }))
	defer srv.Close()
	old := newSiteFetcher
	newSiteFetcher = func(guard *netguard.Guard) *site.Fetcher {
		return &site.Fetcher{Guard: guard, Rewrite: func(string) string { return srv.Listener.Addr().String() }}
	}
	defer func() { newSiteFetcher = old }()
	db := filepath.Join(t.TempDir(), "h.db")
	if _, stderr, code := runCLI(t, "", "watch", "--enrich=false", "--site-check=false", "--source", demoFile(t), "--db", db); code != 0 {
		t.Fatal(stderr)
	}
	// Without the local server let through, every check (on a copy of the queue) is refused.
	copied := filepath.Join(t.TempDir(), "copy.db")
	if data, err := os.ReadFile(db); err != nil || os.WriteFile(copied, data, 0o644) != nil {
		t.Fatal(err)
	}
	if out, _, _ := runCLI(t, "", "site", "check", "--queue", "--db", copied); strings.Count(out, "refusing to connect") != 15 {
		t.Errorf("queue run without --allow-host:\n%s", out)
	}
	out, stderr, code := runCLI(t, "", "site", "check", "--queue", "--db", db, "--allow-host", srv.Listener.Addr().String())
	// 11 cases, 15 names: every name is checked (at most three per case).
	if code != 0 || !strings.Contains(stderr, "site_done=11") || strings.Count(out, "clone\t") != 15 {
		t.Errorf("exit %d\n%s\n%s", code, out, stderr)
	}
	camp, _, _ := runCLI(t, "", "campaigns", "--db", db)
	if !strings.Contains(camp, "phone +18882157421 (toll-free): 11 domains, 11 flagged") {
		t.Errorf("campaigns:\n%s", camp)
	}
	// The report now shows the phone numbers and the clone score.
	md, _, _ := runCLI(t, "", "report", "--db", db, "--no-record", "--brand", "hp", "--date", "2026-11-27")
	if !strings.Contains(md, "phones: +18882157421") || !strings.Contains(md, "clone score: ") || strings.Contains(md, "clone score: not checked") {
		t.Errorf("report:\n%.1500s", md)
	}
}

// A kit saved as files: the shell and the chat snippet say nothing alone; as pages of one site
// with the error page, they are found.
func TestSiteTestJudgesKitsAsSites(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("acme__kit__app_layout.js", `export default function Layout({children}) { return <main>{children}</main> }`)
	write("acme__kit__app_Chat.js", `s.src='https://embed.tawk.to/5f0000000000000000000000/default';`)
	write("acme__kit__app_error_page.js", `<h1>HP printer driver installation failed</h1><p>Downloading driver... Installation failed. Error code 0x61.
Call HP support toll free +1 (888) 215-7421 or chat with an expert.</p>`)
	write("other__notes__readme.txt", `Notes about nothing.`)
	out, _, code := runCLI(t, "", "site", "test", "--scam", dir)
	if !strings.Contains(out, "clone or helpline 1 ") {
		t.Fatalf("file by file (exit %d):\n%s", code, out)
	}
	out, _, _ = runCLI(t, "", "site", "test", "--scam", dir, "--site-sep", "__", "--site-depth", "2")
	if !strings.Contains(out, "clone or helpline 3 ") || !strings.Contains(out, "other__notes__readme.txt") {
		t.Errorf("as sites: the kit's three files are found, the other site's file is not:\n%s", out)
	}
}

// --resolver is honoured by the site check: the site's name is resolved by the chosen DNS
// server (a local one here), not the system's, which answers nothing for it.
func TestSiteCheckResolvesWithTheChosenResolver(t *testing.T) {
	page, err := os.ReadFile("../../testdata/site/clone.html")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(page) }))
	defer srv.Close()
	dnsSrv := enrichtest.StartDNS(t)
	dnsSrv.Add("canon-setup-help.test. 60 IN A 127.0.0.1")
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	url := "http://canon-setup-help.test:" + port + "/"
	out, stderr, code := runCLI(t, "", "site", "check", "--resolver", dnsSrv.Addr, "--allow-host", srv.Listener.Addr().String(), url)
	if code != 0 || !strings.Contains(out, `"verdict":"clone"`) {
		t.Fatalf("with --resolver: exit %d\n%s\n%s", code, out, stderr)
	}
	if dnsSrv.Count("A", "canon-setup-help.test.") == 0 {
		t.Error("the chosen resolver was never asked")
	}
	// Without it the system resolver is asked, which does not know the name.
	if _, _, code := runCLI(t, "", "site", "check", "--allow-host", srv.Listener.Addr().String(), url); code == 0 {
		t.Error("the name resolved without the chosen resolver: the test proves nothing")
	}
}
