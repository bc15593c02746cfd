package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// lookupWorld starts local DNS, RDAP (for .com and .net) and WHOIS (everything else) servers and
// returns the flags that point helpwatch at them.
func lookupWorld(t *testing.T) []string {
	t.Helper()
	dnsSrv := enrichtest.StartDNS(t)
	for _, n := range []string{"hp-printer-setup-help.com", "canon-printer-support-number.com", "epsonconnect-setup-help.info"} {
		dnsSrv.Add(n + ". 300 IN A 192.0.2.50")
		dnsSrv.Add(n + ". 300 IN NS ns1.example-dns.net.")
	}
	dnsSrv.Add("lexmark-printer-helpdesk.com. 300 IN NS ns1.sedoparking.com.")
	rdapSrv := enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		if strings.HasPrefix(name, "hp-") || strings.HasPrefix(name, "canon-") {
			fmt.Fprint(w, enrichtest.RegistryDomain(name, "", time.Now().UTC().Add(-72*time.Hour).Format(time.RFC3339)))
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	boot := filepath.Join(t.TempDir(), "dns.json")
	if err := os.WriteFile(boot, enrichtest.BootstrapFor(rdapSrv.URL, "com", "net"), 0o644); err != nil {
		t.Fatal(err)
	}
	whoisSrv := enrichtest.StartWHOIS(t, func(q string) (string, bool) {
		if strings.HasPrefix(q, "epson") {
			return enrichtest.RegistryWhois(q, ""), false
		}
		return "No match for \"" + strings.ToUpper(q) + "\".\n", false
	})
	return []string{"--resolver", dnsSrv.Addr, "--rdap-bootstrap", boot, "--whois-server", whoisSrv.Addr, "--lookup-rate", "0", "--lookup-timeout", "2s",
		"--allow-host", rdapSrv.Listener.Addr().String(), "--allow-host", whoisSrv.Addr}
}

func TestEnrichQueueAfterReplay(t *testing.T) {
	db := filepath.Join(t.TempDir(), "h.db")
	if _, stderr, code := runCLI(t, "", "watch", "--enrich=false", "--site-check=false", "--source", demoFile(t), "--db", db); code != 0 {
		t.Fatalf("watch: %s", stderr)
	}
	args := append([]string{"enrich", "--queue", "--db", db}, lookupWorld(t)...)
	_, stderr, code := runCLI(t, "", args...)
	if code != 0 || !strings.Contains(stderr, "enrich_done=11") || !strings.Contains(stderr, "still_queued=0") {
		t.Fatalf("enrich --queue: exit %d\n%s", code, stderr)
	}
	out, _, _ := runCLI(t, "", "findings", "--db", db, "--format", "jsonl")
	byName := map[string]watcher.Case{}
	for _, c := range decodeCases(t, out) {
		byName[c.Registrable] = c
	}
	if len(byName) != 11 {
		t.Fatalf("%d cases", len(byName))
	}
	for name, c := range byName {
		if c.Enrichment == nil {
			t.Errorf("%s not enriched", name)
		}
	}
	hp := byName["hp-printer-setup-help.com"]
	reg := hp.Enrichment.Registration
	if reg.Source != "rdap" || reg.AbuseEmail != "abuse@registrar.test" || len(hp.Enrichment.DNS) != 1 || hp.Enrichment.DNS[0].A[0] != "192.0.2.50" ||
		!hasReason(hp.Score.Reasons, "registered-recently") {
		t.Errorf("hp case: %+v %+v", hp.Enrichment, hp.Score)
	}
	epson := byName["epsonconnect-setup-help.info"]
	if epson.Enrichment.Registration.Source != "whois" || epson.Enrichment.Registration.State != "found" || len(epson.Enrichment.DNS) != 2 {
		t.Errorf(".info falls back to WHOIS, both names looked up: %+v", epson.Enrichment)
	}
	lex := byName["lexmark-printer-helpdesk.com"]
	parked := false
	for _, d := range lex.Enrichment.DNS {
		parked = parked || d.ParkedBy == "sedoparking.com"
	}
	if lex.Enrichment.Registration.State != "not_found" || !parked || !hasReason(lex.Score.Reasons, "parked") || lex.Score.Score >= lex.FirstScore.Score {
		t.Errorf("parked, unregistered case: %+v score %+v", lex.Enrichment, lex.Score)
	}
}

func hasReason(reasons []rules.Reason, rule string) bool {
	for _, r := range reasons {
		if r.Rule == rule {
			return true
		}
	}
	return false
}

func hasRule(reasons []struct {
	Rule string `json:"rule"`
}, rule string) bool {
	for _, r := range reasons {
		if r.Rule == rule {
			return true
		}
	}
	return false
}

func TestEnrichOneOff(t *testing.T) {
	args := append([]string{"enrich"}, lookupWorld(t)...)
	out, stderr, code := runCLI(t, "", append(args, "canon-printer-support-number.com", "bad..name")...)
	if code != 1 || !strings.Contains(stderr, "bad..name") {
		t.Errorf("exit %d (want 1 for the invalid name): %s", code, stderr)
	}
	var rec struct {
		Name       string `json:"name"`
		Enrichment struct {
			Registration struct {
				Registrar string `json:"registrar"`
			} `json:"registration"`
		} `json:"enrichment"`
		Revised struct {
			Score int `json:"score"`
		} `json:"revised"`
	}
	if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &rec); err != nil || rec.Enrichment.Registration.Registrar != "Example Registrar, LLC" {
		t.Errorf("one-off output %q: %v", out, err)
	}
	if _, _, code := runCLI(t, "", "enrich"); code != 2 {
		t.Errorf("no names and no --queue: exit %d, want 2", code)
	}
}

// The background enrichment in a live watch: findings get enriched while the stream runs.
func TestWatchEnrichesInTheBackground(t *testing.T) {
	url, sent := streamServer(t, 5, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	old := watchContext
	watchContext = func() (context.Context, context.CancelFunc) { return ctx, cancel }
	defer func() { watchContext = old }()
	db := filepath.Join(t.TempDir(), "h.db")
	done := make(chan int, 1)
	var stderr string
	args := append([]string{"watch", "--site-check=false", "--source", url, "--db", db}, lookupWorld(t)...) // t.Fatal only in the test goroutine
	go func() {
		var code int
		_, stderr, code = runCLI(t, "", args...)
		done <- code
	}()
	waitFor(t, "5 cases enriched", 20*time.Second, func() bool { return sent() >= 5 && enrichedCount(t, db) == 5 })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("watch exit %d\n%s", code, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not stop within 20 s of cancellation")
	}
	if n := enrichedCount(t, db); n != 5 {
		t.Errorf("%d of 5 cases enriched\n%s", n, stderr)
	}
	if !strings.Contains(stderr, "msg=enriched") {
		t.Errorf("no enrichment log lines:\n%s", stderr)
	}
}

func enrichedCount(t *testing.T, path string) int {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		return 0
	}
	db, err := store.OpenSQLite(context.Background(), path)
	if err != nil {
		return 0
	}
	defer db.Close()
	cs, err := db.Cases(context.Background(), store.Query{})
	if err != nil {
		return 0
	}
	n := 0
	for _, c := range cs {
		if c.Enrichment != nil {
			n++
		}
	}
	return n
}
