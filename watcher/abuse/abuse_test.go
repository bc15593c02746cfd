package abuse

import (
	"context"
	"encoding/base64"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
	"github.com/helpwatch/helpwatch/watcher/netguard"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// allowOnly is the address guard with exactly the named local servers let through.
func allowOnly(t *testing.T, hosts ...string) *netguard.Guard {
	t.Helper()
	g := &netguard.Guard{}
	for _, h := range hosts {
		if err := g.AllowHost(h); err != nil {
			t.Fatal(err)
		}
	}
	return g
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, data, 0o644)
	return p
}

func TestLoadReporterErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ content, want string }{
		{"name: A\nemail: not-an-address\n", "not a plain e-mail address"},
		{"email: a@b.test\n", "name is missing"},
		{"name: A\nemail: a@b.test\nphon: x\n", "field phon not found"},
	} {
		p := filepath.Join(dir, "r.yaml")
		os.WriteFile(p, []byte(tc.content), 0o644)
		if _, err := LoadReporter(p); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: %v", tc.content, err)
		}
	}
	if _, err := LoadReporter(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
	_ = rules.VerdictAlert
}

// fakeStatusStore is a StatusStore in memory: which names were ever seen up is set by the test.
type fakeStatusStore struct {
	open      []store.ReportedDomain
	seenUp    map[string]bool
	checks    []store.Check
	takedowns []string
}

func (f *fakeStatusStore) ReportedDomains(context.Context, bool) ([]store.ReportedDomain, error) {
	return f.open, nil
}
func (f *fakeStatusStore) Case(context.Context, string) (*watcher.Case, bool, error) {
	return nil, false, nil
}
func (f *fakeStatusStore) RecordCheck(_ context.Context, c store.Check) error {
	f.checks = append(f.checks, c)
	return nil
}
func (f *fakeStatusStore) RecordTakedown(_ context.Context, _ int64, name string, _ time.Time, _ string) error {
	f.takedowns = append(f.takedowns, name)
	return nil
}
func (f *fakeStatusStore) SeenUp(_ context.Context, name string) (bool, error) {
	return f.seenUp[name], nil
}

// A reported domain that is NXDOMAIN now was taken down only if it was ever up: one that never
// resolved is "never-up", stays open, and does not make a "0 min" takedown.
func TestStatusNeverUpIsNoTakedown(t *testing.T) {
	dnsSrv := enrichtest.StartDNS(t) // knows neither name: both NXDOMAIN
	st := &fakeStatusStore{open: []store.ReportedDomain{{Name: "never-resolved.test", ReportID: 1}, {Name: "was-up.test", ReportID: 1}},
		seenUp: map[string]bool{"was-up.test": true}}
	checks, err := Status(context.Background(), st, &Checker{DNS: &enrich.Resolver{Servers: []string{dnsSrv.Addr}, Timeout: time.Second}})
	if err != nil || len(checks) != 2 {
		t.Fatal(checks, err)
	}
	if checks[0].State != store.StateNeverUp || !strings.Contains(checks[0].Detail, "never seen up") || checks[1].State != store.StateDark {
		t.Errorf("checks %+v", checks)
	}
	if len(st.takedowns) != 1 || st.takedowns[0] != "was-up.test" {
		t.Errorf("takedowns %v, want only was-up.test", st.takedowns)
	}
	if st.checks[0].State != store.StateNeverUp {
		t.Errorf("recorded %+v", st.checks[0])
	}
}

// An SMTP server's answer is said with its code and a cleaned, bounded text, never with the
// credentials it may echo.
func TestSMTPReplyWithoutCredentials(t *testing.T) {
	cfg := SMTP{User: "hw", Password: "s3cret-pass"}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00hw\x00s3cret-pass"))
	err := replyError("AUTH", &textproto.Error{Code: 535, Msg: "5.7.8 bad AUTH PLAIN " + plain + " (s3cret-pass)\x1b[31m" + strings.Repeat("x", 500)}, cfg)
	msg := err.Error()
	if strings.Contains(msg, plain) || strings.Contains(msg, "s3cret") || strings.Contains(msg, "\x1b") || len(msg) > 220 || !strings.Contains(msg, "535") {
		t.Errorf("%q", msg)
	}
}
