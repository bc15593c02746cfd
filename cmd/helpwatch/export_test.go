package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
)

// export writes MISP, STIX and CSV files readable by their owner only, refuses what it cannot
// do with the value named, and pushes to a MISP instance only through the guard, with the key.
func TestExportCommand(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	if _, _, code := runCLI(t, "", "watch", "--source", "../../testdata/certstream_demo.jsonl", "--db", db, "--enrich=false", "--site-check=false"); code != 0 {
		t.Fatal("watch failed")
	}
	for _, format := range []string{"misp", "stix", "csv"} {
		out := filepath.Join(dir, "export."+format)
		_, stderr, code := runCLI(t, "", "export", "--format", format, "--db", db, "--out", out)
		if code != 0 || !strings.Contains(stderr, "exported 11 case(s)") {
			t.Fatalf("export %s: %d %s", format, code, stderr)
		}
		fi, err := os.Stat(out)
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
			t.Errorf("%s: %v %v", out, fi.Mode(), err)
		}
		if format != "csv" {
			raw, _ := os.ReadFile(out)
			if !json.Valid(raw) {
				t.Errorf("%s is not JSON", out)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "openioc"}, `--format "openioc"`},
		{[]string{"--format", "stix", "--tlp", "purple"}, `--tlp "purple"`},
		{[]string{"--format", "stix", "--push", "https://misp.test"}, "--format misp"},
		{[]string{"--format", "misp", "--push", "https://misp.test"}, "HELPWATCH_MISP_KEY"},
	} {
		if _, stderr, code := runCLI(t, "", append([]string{"export", "--db", db}, tc.args...)...); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("export %v: %d %s", tc.args, code, stderr)
		}
	}
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		keys = append(keys, r.Header.Get("Authorization"))
		mu.Unlock()
		io.WriteString(w, `{"Event":{}}`)
	}))
	defer srv.Close()
	t.Setenv("HELPWATCH_MISP_KEY", "k3y")
	if _, stderr, code := runCLI(t, "", "export", "--format", "misp", "--db", db, "--out", filepath.Join(dir, "m.json"), "--push", srv.URL); code == 0 || !strings.Contains(stderr, "127.0.0.1") {
		t.Errorf("a push to loopback without --allow-host: %d %s", code, stderr)
	}
	_, stderr, code := runCLI(t, "", "export", "--format", "misp", "--db", db, "--out", filepath.Join(dir, "m.json"), "--push", srv.URL,
		"--allow-host", strings.TrimPrefix(srv.URL, "http://"))
	if code != 0 || !strings.Contains(stderr, "11 event(s) added") {
		t.Errorf("push: %d %s", code, stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 11 || keys[0] != "k3y" {
		t.Errorf("MISP got %d events, key %q", len(keys), keys)
	}
}

// watch --source nrd:FILE scores a newly-registered-domain list and stores what it flags.
func TestWatchNRDSource(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "nrd.txt")
	os.WriteFile(list, []byte("hp-printer-support-help.com\nexample.org\nepson-printer-offline-help.net\n"), 0o600)
	db := filepath.Join(dir, "h.db")
	if _, stderr, code := runCLI(t, "", "watch", "--source", "nrd:"+list, "--db", db, "--enrich=false", "--site-check=false"); code != 0 {
		t.Fatalf("watch: %s", stderr)
	}
	out, _, _ := runCLI(t, "", "findings", "--db", db, "--format", "jsonl")
	if !strings.Contains(out, "hp-printer-support-help.com") || !strings.Contains(out, "epson-printer-offline-help.net") || strings.Contains(out, "example.org") {
		t.Errorf("findings:\n%s", out)
	}
	if _, stderr, code := runCLI(t, "", "watch", "--source", "nrd:", "--db", db); code != 2 || !strings.Contains(stderr, "nrd:FILE") {
		t.Errorf("nrd: without a location: %d %s", code, stderr)
	}
}

// sweep asks DNS which look-alikes exist and stores them as cases; a second sweep right after
// asks about nothing that was answered.
func TestSweepCommand(t *testing.T) {
	dnsSrv := enrichtest.StartDNS(t)
	dnsSrv.Add("can0n.com. 300 IN A 192.0.2.7")
	dnsSrv.Add("canonprintersupport.com. 300 IN NS ns1.example.")
	// The registry knows one name DNS does not (registered, not delegated yet).
	var rdapAsked atomic.Int64
	rdapSrv := enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) {
		rdapAsked.Add(1)
		if strings.HasSuffix(r.URL.Path, "/canonprinterhelp.com") {
			fmt.Fprint(w, enrichtest.RegistryDomain("canonprinterhelp.com", "", "2026-12-04T10:00:00Z"))
			return
		}
		w.WriteHeader(http.StatusNotFound)
	})
	boot := filepath.Join(t.TempDir(), "dns.json")
	if err := os.WriteFile(boot, enrichtest.BootstrapFor(rdapSrv.URL, "com"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "h.db")
	args := []string{"sweep", "--db", db, "--brands", "canon", "--kinds", "helpline,homoglyph", "--tlds", "com", "--rate", "2000", "--resolver", dnsSrv.Addr,
		"--rdap-bootstrap", boot, "--allow-host", rdapSrv.Listener.Addr().String(), "--lookup-rate", "0", "--rdap-max", "1000"}
	out, stderr, code := runCLI(t, "", args...)
	var candidates int
	fmt.Sscanf(stderr, "%d candidates", &candidates)
	// Every candidate but the two DNS knows is asked about at the registry, once.
	notInDNS := candidates - 2
	if code != 0 || !strings.Contains(out, "exists\tcan0n.com") || !strings.Contains(out, "exists\tcanonprintersupport.com") ||
		!strings.Contains(out, "exists\tcanonprinterhelp.com") || !strings.Contains(stderr, "candidates: helpline") || candidates < 100 ||
		!strings.Contains(stderr, fmt.Sprintf("registry_asked=%d ", notInDNS)) || !strings.Contains(stderr, "registered_not_in_dns=1") {
		t.Fatalf("sweep: %d\n%s\n%s", code, out, stderr)
	}
	if n := rdapAsked.Load(); n != int64(notInDNS) {
		t.Errorf("RDAP asked %d times, want once for each of the %d names DNS does not know", n, notInDNS)
	}
	found, _, _ := runCLI(t, "", "findings", "--db", db, "--format", "jsonl")
	if !strings.Contains(found, `"registrable":"can0n.com"`) || !strings.Contains(found, "look-alike sweep") {
		t.Errorf("findings:\n%s", found)
	}
	asked := dnsSrv.Count("NS", "canonprintersupport.com")
	if _, stderr, code := runCLI(t, "", args...); code != 0 || !strings.Contains(stderr, "asked=0") || dnsSrv.Count("NS", "canonprintersupport.com") != asked {
		t.Errorf("a second sweep asked again: %d\n%s", code, stderr)
	}
}
