package abuse

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
	"github.com/helpwatch/helpwatch/watcher/netguard"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// smtpServer is a minimal SMTP server on 127.0.0.1 that keeps what it receives.
type smtpServer struct {
	addr   string
	mu     sync.Mutex
	got    []received
	reject map[string]string // recipient -> reply to RCPT
	// cutInData closes the connection in the middle of the message (after 354): it never
	// reaches the server whole.
	cutInData bool
	// queued runs after the server has accepted a message and answered 250 (then the
	// connection is cut, as a server restarting at that moment would).
	queued func()
}

type received struct {
	from, to string
	data     []byte
}

func startSMTP(t *testing.T) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{addr: ln.Addr().String(), reject: map[string]string{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	say := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	say("220 mx.test ESMTP")
	var cur received
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			say("250-mx.test")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "HELO"), strings.HasPrefix(cmd, "NOOP"), strings.HasPrefix(cmd, "RSET"):
			say("250 ok")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			cur = received{from: between(line, "<", ">")}
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			to := between(line, "<", ">")
			s.mu.Lock()
			reply, bad := s.reject[to]
			s.mu.Unlock()
			if bad {
				say(reply)
				continue
			}
			cur.to = to
			say("250 ok")
		case cmd == "DATA":
			say("354 end with .")
			s.mu.Lock()
			cut, queued := s.cutInData, s.queued
			s.mu.Unlock()
			if cut {
				r.ReadString('\n')
				return
			}
			var data []byte
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				l = strings.TrimPrefix(l, ".")
				data = append(data, l...)
			}
			cur.data = data
			s.mu.Lock()
			s.got = append(s.got, cur)
			s.mu.Unlock()
			say("250 queued")
			if queued != nil {
				queued()
				return
			}
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 unknown")
		}
	}
}

func between(s, open, close string) string {
	i := strings.Index(s, open)
	j := strings.LastIndex(s, close)
	if i < 0 || j < i {
		return ""
	}
	return s[i+1 : j]
}

func (s *smtpServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

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
