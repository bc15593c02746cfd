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
	if code != 0 || !strings.Contains(stderr, "enriched=15") || !strings.Contains(stderr, "still_queued=0") {
		t.Fatalf("enrich --queue: exit %d\n%s", code, stderr)
	}
	out, _, _ := runCLI(t, "", "findings", "--db", db, "--format", "jsonl")
	byName := map[string]struct {
		Score      int `json:"score"`
		Enrichment *struct {
			DNS struct {
				State    string   `json:"state"`
				A        []string `json:"a"`
				ParkedBy string   `json:"parked_by"`
			} `json:"dns"`
			Registration struct {
				State      string    `json:"state"`
				Source     string    `json:"source"`
				Created    time.Time `json:"created"`
				Registrar  string    `json:"registrar"`
				AbuseEmail string    `json:"abuse_email"`
			} `json:"registration"`
		} `json:"enrichment"`
		Revised *struct {
			Score   int `json:"score"`
			Reasons []struct {
				Rule string `json:"rule"`
			} `json:"reasons"`
		} `json:"revised"`
	}{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var f struct {
			Domain string `json:"domain"`
		}
		json.Unmarshal([]byte(line), &f)
		v := byName[f.Domain]
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatal(err)
		}
		byName[f.Domain] = v
	}
	if len(byName) != 15 {
		t.Fatalf("%d findings", len(byName))
	}
	for name, f := range byName {
		if f.Enrichment == nil || f.Revised == nil {
			t.Errorf("%s not enriched", name)
		}
	}
	hp := byName["hp-printer-setup-help.com"]
	if hp.Enrichment.Registration.Source != "rdap" || hp.Enrichment.Registration.AbuseEmail != "abuse@registrar.test" ||
		hp.Enrichment.DNS.A[0] != "192.0.2.50" || !hasRule(hp.Revised.Reasons, "registered-recently") {
		t.Errorf("hp finding: %+v %+v", hp.Enrichment, hp.Revised)
	}
	epson := byName["epsonconnect-setup-help.info"]
	if epson.Enrichment.Registration.Source != "whois" || epson.Enrichment.Registration.State != "found" {
		t.Errorf(".info falls back to WHOIS: %+v", epson.Enrichment.Registration)
	}
	lex := byName["lexmark-printer-helpdesk.com"]
	if lex.Enrichment.Registration.State != "not_found" || lex.Enrichment.DNS.ParkedBy != "sedoparking.com" || !hasRule(lex.Revised.Reasons, "parked") ||
		lex.Revised.Score >= lex.Score {
		t.Errorf("parked, unregistered finding: %+v revised %+v", lex.Enrichment, lex.Revised)
	}
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
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if sent() >= 5 && enrichedCount(t, db) == 5 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
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
		t.Errorf("%d of 5 findings enriched\n%s", n, stderr)
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
	fs, err := db.Findings(context.Background(), store.Query{})
	if err != nil {
		return 0
	}
	n := 0
	for _, f := range fs {
		if f.Enrichment != nil {
			n++
		}
	}
	return n
}
