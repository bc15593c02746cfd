package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
	// Capped scores: "100+" where the points do not fit, the points themselves where they do.
	if !strings.Contains(outputs[80], "100+") || !strings.Contains(outputs[200], " PTS ") {
		t.Errorf("the cap is not shown:\n%s\n%s", outputs[80], outputs[200])
	}
	// --order points ranks by the points before the cap: never rising down the list.
	ranked, _, code := runCLI(t, "", "findings", "--db", db, "--order", "points", "--format", "jsonl")
	if code != 0 {
		t.Fatal(code)
	}
	last, rows := 1<<30, 0
	for _, line := range strings.Split(strings.TrimSpace(ranked), "\n") {
		var c struct {
			Registrable string `json:"registrable"`
			Points      int    `json:"points"`
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil || c.Points == 0 || c.Registrable == "" {
			t.Fatalf("row %q: %v", line, err)
		}
		if c.Points > last {
			t.Errorf("--order points: %d after %d", c.Points, last)
		}
		last, rows = c.Points, rows+1
	}
	if rows != 11 {
		t.Errorf("--order points: %d rows, want 11", rows)
	}
	if _, stderr, code := runCLI(t, "", "findings", "--db", db, "--order", "score"); code != 2 || !strings.Contains(stderr, `--order "score"`) {
		t.Errorf("--order score: %d %s", code, stderr)
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

// serve --tls-cert/--tls-key serves HTTPS only: a sign-in over it gets a Secure session
// cookie, plain HTTP on the same port is refused, and SIGTERM stops it with exit 0.
func TestServeOverTLS(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	if _, _, code := runCLI(t, "", "watch", "--source", "../../testdata/certstream_demo.jsonl", "--db", db, "--enrich=false", "--site-check=false"); code != 0 {
		t.Fatalf("watch exited %d", code)
	}
	const password = "a long enough password"
	if _, stderr, code := runCLI(t, password+"\n", "users", "add", "ana", "--role", "analyst", "--db", db); code != 0 {
		t.Fatalf("users add: %s", stderr)
	}
	certFile, keyFile, pool := selfSignedLoopback(t, dir)
	cmd := newChild("serve", "--db", db, "--addr", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)
	stdout, stderr := &lockedBuilder{}, &lockedBuilder{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var base string
	waitFor(t, "the console to listen", 20*time.Second, func() bool {
		_, after, ok := strings.Cut(stdout.String(), "console on ")
		base, _, _ = strings.Cut(after, " ")
		return ok && strings.HasPrefix(base, "https://127.0.0.1:")
	})
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	resp, err := tlsClient.PostForm(base+"/login", url.Values{"name": {"ana"}, "password": {password}})
	if err != nil {
		t.Fatalf("sign-in over TLS: %v\n%s", err, stderr)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Value != "" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil || !session.Secure || !session.HttpOnly {
		t.Errorf("sign-in over TLS: %d, cookie %+v", resp.StatusCode, session)
	}
	// Plain HTTP on the TLS port: Go's server answers 400 and nothing of the console.
	plain := &http.Client{Timeout: 10 * time.Second}
	if resp, err := plain.Get("http://" + strings.TrimPrefix(base, "https://") + "/login"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "password") {
			t.Errorf("plain HTTP on the TLS port: %d %q", resp.StatusCode, body)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, stderr)
	}
}

// selfSignedLoopback writes a certificate for 127.0.0.1 and its key, and returns a pool that
// trusts it.
func selfSignedLoopback(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "helpwatch test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
