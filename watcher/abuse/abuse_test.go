package abuse

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
	"github.com/helpwatch/helpwatch/watcher/internal/fixture"
	"github.com/helpwatch/helpwatch/watcher/store"
)

const fixtureStream = "../../testdata/report_fixture.jsonl"

var reporter = &Reporter{Name: "Jane Analyst", Organization: "Imaging Supplies Coalition", Email: "brand-protection@coalition.test",
	Phone: "+1 555 0100", OnBehalfOf: "HP, Canon, Epson, Brother, Lexmark and Xerox"}

// smtpServer is a minimal SMTP server on 127.0.0.1 that keeps what it receives.
type smtpServer struct {
	addr   string
	mu     sync.Mutex
	got    []received
	reject map[string]string // recipient -> reply to RCPT
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

func prepared(t *testing.T) (*store.SQLite, *Prepared, string) {
	t.Helper()
	db, _ := fixture.FilledStore(t, fixtureStream)
	outbox := filepath.Join(t.TempDir(), "outbox")
	res, err := Prepare(context.Background(), db, reporter, PrepareOptions{Since: fixture.Seen.Add(-24 * time.Hour), Outbox: outbox,
		Now: fixture.Enriched.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return db, res, outbox
}

// parsed is a message read back with net/mail: headers, the decoded text body and the JSON
// attachment.
type parsed struct {
	header mail.Header
	body   string
	attach attachmentDoc
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	p := parsed{header: msg.Header}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(part.Header.Get("Content-Type"), "text/plain"):
			b, err := io.ReadAll(quotedprintable.NewReader(part))
			if err != nil {
				t.Fatal(err)
			}
			p.body = string(b)
		case strings.HasPrefix(part.Header.Get("Content-Type"), "application/json"):
			b, _ := io.ReadAll(part)
			j, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\r\n", ""))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(j, &p.attach); err != nil {
				t.Fatal(err)
			}
		}
	}
	return p
}

func TestPrepareOneMessagePerAbuseDesk(t *testing.T) {
	db, res, outbox := prepared(t)
	if len(res.Messages) != 2 {
		t.Fatalf("%d messages, want 2 (one per abuse address)", len(res.Messages))
	}
	byTo := map[string]parsed{}
	for _, m := range res.Messages {
		raw, err := os.ReadFile(m.File)
		if err != nil {
			t.Fatal(err)
		}
		p := parse(t, raw)
		to, err := mail.ParseAddress(p.header.Get("To"))
		if err != nil {
			t.Fatal(err)
		}
		byTo[to.Address] = p
		if p.header.Get("Message-Id") != m.MessageID {
			t.Errorf("Message-ID %q, recorded %q", p.header.Get("Message-Id"), m.MessageID)
		}
		for k := range p.header {
			if strings.EqualFold(k, "Bcc") || strings.EqualFold(k, "Cc") {
				t.Errorf("header %s injected through an outside field", k)
			}
		}
	}
	main := byTo["abuse@registrar.test"]
	if main.header == nil {
		t.Fatalf("no message to abuse@registrar.test: %v", byTo)
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(main.header.Get("Subject"))
	if !strings.Contains(subject, "4 domains impersonating Brother, HP, Lexmark") {
		t.Errorf("subject %q", subject)
	}
	for _, fact := range []string{
		"hp-printer-setup-help.com", "www.hp-printer-setup-help.com", "brother-printer-support-number.info",
		"Impersonates: HP", "Why: brand name appears as a word",
		"Certificate: appeared in Certificate Transparency 2026-11-26", "index 500000001",
		"Registered: 2026-11-23 (registrar Example Registrar, LLC, IANA ID 9999; per rdap)",
		"Registered: 2026-11-20 (registrar Example Registrar, LLC, IANA ID 9999; per whois)",
		"Resolves to: 192.0.2.10", "Phone numbers on the site", "Reported by Jane Analyst, Imaging Supplies Coalition <brand-protection@coalition.test>",
	} {
		if !strings.Contains(main.body, fact) {
			t.Errorf("body lacks %q", fact)
		}
	}
	if len(main.attach.Domains) != 4 || main.attach.Domains[0].Registration == nil || main.attach.AbuseEmail != "abuse@registrar.test" {
		t.Errorf("attachment %+v", main.attach)
	}
	evil := byTo["abuse@evil-registrar.test"]
	if strings.Contains(evil.body, "\r\nBcc") || !strings.Contains(evil.body, "Evil <script>") && !strings.Contains(evil.body, "Evil") {
		t.Errorf("hostile registrar name handled badly in the body:\n%s", evil.body)
	}
	// Domains without a usable contact are listed with the reason.
	list, err := os.ReadFile(res.ListFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"epson-printer-offline-fix.net\tthe registry has no registration for it", "xerox-printer-setup.xyz\tabuse contact \"not an e-mail\" is not an e-mail address"} {
		if !strings.Contains(string(list), want) {
			t.Errorf("unreportable list lacks %q:\n%s", want, list)
		}
	}
	// Nothing is prepared twice.
	again, err := Prepare(context.Background(), db, reporter, PrepareOptions{Since: fixture.Seen.Add(-24 * time.Hour), Outbox: outbox, Now: time.Now()})
	if err != nil || len(again.Messages) != 0 {
		t.Errorf("second prepare: %d messages, %v", len(again.Messages), err)
	}
}

func TestSendOnceStopOnErrorAndDryRun(t *testing.T) {
	db, res, outbox := prepared(t)
	srv := startSMTP(t)
	srv.reject["abuse@evil-registrar.test"] = "550 5.1.1 mailbox unavailable"
	ctx := context.Background()
	cfg := SMTP{Addr: srv.addr, Timeout: 5 * time.Second}

	// Dry run: nothing goes out, nothing is recorded.
	outs, err := Send(ctx, db, outbox, cfg, true)
	if err != nil || len(outs) != 2 || outs[0].Status != "would send" || len(srv.received()) != 0 {
		t.Fatalf("dry run: %+v %v", outs, err)
	}
	// The first message (in file order, the evil registrar's) is refused: Send stops, the
	// other stays queued.
	_, err = Send(ctx, db, outbox, cfg, false)
	if err == nil || !strings.Contains(err.Error(), "550") || !strings.Contains(err.Error(), "stay in") {
		t.Fatalf("refused recipient: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(outbox, "*.eml")); len(files) != 2 || len(srv.received()) != 0 {
		t.Fatalf("after the error: %d files left, %d received", len(files), len(srv.received()))
	}
	// The server accepts again: both go, once.
	delete(srv.reject, "abuse@evil-registrar.test")
	outs, err = Send(ctx, db, outbox, cfg, false)
	if err != nil || len(outs) != 2 || len(srv.received()) != 2 {
		t.Fatalf("send: %+v %v (%d received)", outs, err, len(srv.received()))
	}
	got := srv.received()
	for _, r := range got {
		p := parse(t, r.data)
		to, _ := mail.ParseAddress(p.header.Get("To"))
		if r.to != to.Address || r.from != reporter.Email {
			t.Errorf("envelope %s -> %s, header To %s", r.from, r.to, to.Address)
		}
	}
	for _, m := range res.Messages {
		rec, ok, _ := db.AbuseReportByMessageID(ctx, m.MessageID)
		if !ok || rec.SentAt.IsZero() {
			t.Errorf("%s not recorded as sent", m.MessageID)
		}
	}
	// A sent message put back in the outbox is not sent again.
	sent, _ := filepath.Glob(filepath.Join(outbox, "sent", "*.eml"))
	if len(sent) != 2 {
		t.Fatalf("%d files in sent/", len(sent))
	}
	data, _ := os.ReadFile(sent[0])
	os.WriteFile(filepath.Join(outbox, filepath.Base(sent[0])), data, 0o644)
	outs, err = Send(ctx, db, outbox, cfg, false)
	if err != nil || len(srv.received()) != 2 || !strings.HasPrefix(outs[0].Status, "already sent") {
		t.Errorf("re-send: %+v %v, %d received", outs, err, len(srv.received()))
	}
	// A message this database never prepared is skipped.
	os.WriteFile(filepath.Join(outbox, "zz-foreign.eml"), []byte("From: a@b.test\r\nTo: c@d.test\r\nMessage-ID: <x@y>\r\nSubject: hi\r\n\r\nbody\r\n"), 0o644)
	outs, _ = Send(ctx, db, outbox, cfg, false)
	if last := outs[len(outs)-1]; !strings.Contains(last.Status, "not prepared") || len(srv.received()) != 2 {
		t.Errorf("foreign message: %+v", last)
	}
}

func TestStatusRecordsTakedowns(t *testing.T) {
	db, _, outbox := prepared(t)
	srv := startSMTP(t)
	ctx := context.Background()
	if _, err := Send(ctx, db, outbox, SMTP{Addr: srv.addr}, false); err != nil {
		t.Fatal(err)
	}
	// Now: canon is on hold at its registry, hp still answers on its web port, brother's
	// site is down, www.hp no longer resolves.
	dnsSrv := enrichtest.StartDNS(t)
	for _, rr := range []string{"hp-printer-setup-help.com. 60 IN A 192.0.2.10", "brother-printer-support-number.info. 60 IN A 192.0.2.30",
		"canon-ij-setup-support.online. 60 IN A 192.0.2.20", "lexmark-printer-helpdesk.com. 60 IN A 192.0.2.50"} {
		dnsSrv.Add(rr)
	}
	rdapSrv := enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		body := enrichtest.RegistryDomain(name, "", "2026-11-20T00:00:00Z")
		if strings.HasPrefix(name, "canon") {
			body = strings.Replace(body, `"client transfer prohibited"`, `"client hold"`, 1)
		}
		fmt.Fprint(w, body)
	})
	boot, err := enrich.LoadBootstrap(ctx, enrich.BootstrapOptions{Location: writeTemp(t, enrichtest.BootstrapFor(rdapSrv.URL, "online"))})
	if err != nil {
		t.Fatal(err)
	}
	web, _ := net.Listen("tcp", "127.0.0.1:0")
	defer web.Close()
	go func() {
		for {
			c, err := web.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	checker := &Checker{DNS: &enrich.Resolver{Servers: []string{dnsSrv.Addr}, Timeout: time.Second},
		RDAP: &enrich.RDAP{Bootstrap: boot}, DialTimeout: time.Second,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if strings.HasPrefix(addr, "192.0.2.10:") || strings.HasPrefix(addr, "192.0.2.50:") { // these sites are up
				var d net.Dialer
				return d.DialContext(ctx, network, web.Addr().String())
			}
			return nil, errors.New("connection refused")
		}}
	checks, err := Status(ctx, db, checker)
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]store.Check{}
	for _, c := range checks {
		state[c.Name] = c
	}
	for name, want := range map[string]string{
		"canon-ij-setup-support.online": store.StateSuspended, "hp-printer-setup-help.com": store.StateLive,
		"brother-printer-support-number.info": store.StateDark, "www.hp-printer-setup-help.com": store.StateDark,
		"lexmark-printer-helpdesk.com": store.StateLive,
	} {
		if state[name].State != want {
			t.Errorf("%s: %+v, want %s", name, state[name], want)
		}
	}
	if !strings.Contains(state["brother-printer-support-number.info"].Detail, "site down") || state["www.hp-printer-setup-help.com"].Detail != "NXDOMAIN" {
		t.Errorf("details: %+v", state)
	}
	all, _ := db.ReportedDomains(ctx, false)
	down := 0
	for _, d := range all {
		if !d.TakenDownAt.IsZero() {
			down++
		}
	}
	if down != 3 {
		t.Errorf("%d takedowns recorded, want 3", down)
	}
	// A second run checks only what is still up.
	open, _ := db.ReportedDomains(ctx, true)
	if len(open) != 2 {
		t.Errorf("%d reported domains still open, want 2", len(open))
	}
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
