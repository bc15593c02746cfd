package abuse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"image/png"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/helpwatch/helpwatch/watcher/capture"
	"github.com/helpwatch/helpwatch/watcher/capture/capturetest"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
	"github.com/helpwatch/helpwatch/watcher/internal/fixture"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/site"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/testkit"
)

const fixtureStream = "../../testdata/report_fixture.jsonl"

var reporter = &Reporter{Name: "Jane Analyst", Organization: "Imaging Supplies Coalition", Email: "brand-protection@coalition.test",
	Phone: "+1 555 0100", OnBehalfOf: "HP, Canon, Epson, Brother, Lexmark and Xerox"}

// mailPart is one part of a received message.
type mailPart struct {
	media, name string
	data        []byte
}

func readMail(t *testing.T, raw []byte) (mail.Header, []mailPart) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	var parts []mailPart
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p)
		media, mp, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		switch p.Header.Get("Content-Transfer-Encoding") {
		case "base64":
			body, err = base64.StdEncoding.DecodeString(strings.ReplaceAll(string(body), "\r\n", ""))
			if err != nil {
				t.Fatal(err)
			}
		case "quoted-printable":
			body, _ = io.ReadAll(quotedprintable.NewReader(bytes.NewReader(body)))
		}
		parts = append(parts, mailPart{media: media, name: mp["name"], data: body})
	}
	return msg.Header, parts
}

func xarfSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile(filepath.Join("..", "..", "testdata", "xarf", "content-report.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// apiServer stands in for a report API: it keeps every POST.
type apiServer struct {
	*httptest.Server
	mu    sync.Mutex
	posts [][]byte
}

func startAPI(t *testing.T) *apiServer {
	a := &apiServer{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.posts = append(a.posts, body)
		a.mu.Unlock()
		w.Write([]byte(`{"message":"Successfully reported","uuid":"0f3c6d2e"}`))
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *apiServer) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.posts)
}

// The whole ladder on the machine: a case is captured from a site that shows its helpline kit
// to a phone from search and a blank page to a desktop; prepare drafts one report per
// destination for it and none for the cases nobody saw abuse on (each listed with its reason);
// nothing goes out before approval; once approved the registrar's and the hosting provider's
// desks get one message each with the screenshot and a valid X-ARF document, Netcraft's API
// one POST; two business days without action make a follow-up due; and a site taken down
// moves the reports to actioned.
func TestEvidenceToTakedownLadder(t *testing.T) {
	testkit.NeedBrowser(t)
	ctx := context.Background()
	db, world := fixture.FilledStore(t, fixtureStream)
	rs, err := db.Rules()
	if err != nil {
		t.Fatal(err)
	}
	const domain = "hp-printer-setup-help.com"
	c, ok, err := db.Case(ctx, domain)
	if err != nil || !ok {
		t.Fatalf("case %s: %v %v", domain, ok, err)
	}

	// The site: every fetch and the browser of domain go to the local cloaking kit.
	kit, err := os.ReadFile("../../testdata/site/helpline.html")
	if err != nil {
		t.Fatal(err)
	}
	kit = bytes.ReplaceAll(kit, []byte("Canon"), []byte("HP"))
	srv := capturetest.CloakingSite(t, kit)
	siteAddr := srv.Listener.Addr().String()
	rewrite := func(hostport string) string {
		if h, _, _ := net.SplitHostPort(hostport); h == domain || h == "www."+domain {
			return siteAddr
		}
		return hostport
	}
	boot, rdapHost := capturetest.HostingRDAP(t)
	guard := allowOnly(t, "127.0.0.1")
	captured := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC) // a Friday
	capturer := &capture.Capturer{Rules: rs, Fetcher: &site.Fetcher{Guard: guard, Timeout: 5 * time.Second, Rewrite: rewrite},
		Renderer: &site.Renderer{Timeout: 60 * time.Second, Rewrite: rewrite},
		Hosting:  &enrich.Hosting{Bootstraps: []string{boot}, Guard: guard}, Now: func() time.Time { return captured }}
	got, arts := capturer.Capture(ctx, domain)
	if !got.Observed() || !got.Cloaked {
		t.Fatalf("capture: %s cloaked %v: %+v", got.Verdict, got.Cloaked, got.Shots)
	}
	got.CaseID = c.ID
	var kept []store.Artefact
	for _, a := range arts {
		kept = append(kept, store.Artefact{SHA256: a.SHA256, MediaType: a.MediaType, Data: a.Data})
	}
	if err := db.SaveCapture(ctx, nil, got, kept); err != nil {
		t.Fatal(err)
	}

	api := startAPI(t)
	outbox := filepath.Join(t.TempDir(), "outbox")
	res, err := Prepare(ctx, db, reporter, PrepareOptions{Since: fixture.Seen.Add(-24 * time.Hour), Outbox: outbox, Now: captured.Add(time.Minute),
		Rules: rs, NetcraftURL: api.URL + "/api/v3/report/urls", Actor: "jane"})
	if err != nil {
		t.Fatal(err)
	}
	byDest := map[string]*store.AbuseReport{}
	for _, m := range res.Messages {
		if m.Names[0] != domain {
			t.Errorf("%s was reported to %s without observed abuse", m.Names[0], m.Destination)
		}
		byDest[m.Destination] = m
	}
	if len(byDest) != 4 || len(res.Messages) != 4 {
		t.Fatalf("%d drafts for %v, want one per destination", len(res.Messages), byDest)
	}
	notYet := map[string]string{}
	for _, u := range res.NotYet {
		notYet[u.Domain] = u.Reason
	}
	if !strings.Contains(notYet["canon-ij-setup-support.online"], "only the name") || res.ListFile == "" {
		t.Errorf("not reportable yet: %v (list %q)", notYet, res.ListFile)
	}
	if list, _ := os.ReadFile(res.ListFile); !strings.Contains(string(list), "canon-ij-setup-support.online") {
		t.Errorf("the outbox list does not name the cases not reported: %s", list)
	}

	smtpSrv := testkit.StartSMTP(t)
	deliverer := &Deliverer{Store: db, Destinations: map[string]Destination{
		store.DestRegistrar: &Mail{SMTP: SMTP{Addr: smtpSrv.Addr}}, store.DestHosting: &Mail{SMTP: SMTP{Addr: smtpSrv.Addr}},
		store.DestNetcraft: &ReportAPI{Client: guard.HTTPClient(5*time.Second, 0)}},
		Now: func() time.Time { return captured.Add(3 * time.Minute) }}
	drain := func() {
		t.Helper()
		r := &queue.Runner{Store: db, Drain: true, Log: testkit.Quiet(), Kinds: []queue.Kind{deliverer.Kind(1)}}
		if err := r.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	drain()
	if n := len(smtpSrv.Received()) + api.count(); n != 0 {
		t.Fatalf("%d reports went out before approval", n)
	}
	var approve []int64
	for _, d := range []string{store.DestRegistrar, store.DestHosting, store.DestNetcraft} {
		approve = append(approve, byDest[d].ID)
	}
	if err := Approve(ctx, db, approve, "jane", "evidence checked", captured.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	drain()
	drain() // a second run sends nothing again
	mails := smtpSrv.Received()
	if len(mails) != 2 || api.count() != 1 {
		t.Fatalf("%d mails and %d API posts, want 2 and 1", len(mails), api.count())
	}
	schema := xarfSchema(t)
	private := []string{world.DNS.Addr, world.RDAP.Listener.Addr().String(), rdapHost}
	to := map[string]bool{}
	for _, m := range mails {
		to[m.To] = true
		header, parts := readMail(t, m.Data)
		subject, _ := new(mime.WordDecoder).DecodeHeader(header.Get("Subject"))
		if subject != "Phishing - hp-printer-setup-help[.]com - Reported by Imaging Supplies Coalition" {
			t.Errorf("subject %q", subject)
		}
		var text string
		var shots, xarfs int
		for _, p := range parts {
			switch p.media {
			case "text/plain":
				text = string(p.data)
			case "image/png":
				shots++
				if _, err := png.Decode(bytes.NewReader(p.data)); err != nil {
					t.Errorf("attached screenshot does not decode: %v", err)
				}
				sum := sha256.Sum256(p.data)
				if a, ok, _ := db.Artefact(ctx, hex.EncodeToString(sum[:])); !ok || !bytes.Equal(a.Data, p.data) {
					t.Errorf("the attached screenshot is not the stored artefact")
				}
			case "application/json":
				xarfs++
				inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(p.data))
				if err != nil {
					t.Fatal(err)
				}
				if err := schema.Validate(inst); err != nil {
					t.Errorf("the X-ARF attachment is not valid X-ARF v4: %v", err)
				}
			}
		}
		if shots != 2 || xarfs != 1 {
			t.Errorf("to %s: %d screenshots and %d X-ARF documents, want 2 (both profiles) and 1", m.To, shots, xarfs)
		}
		for _, want := range []string{"Targeted brand: HP (its real site: https://www.hp.com/)", "URL: hxxp://hp-printer-setup-help[.]com/",
			"Last observed: 2026-11-27 09:30:00 UTC", "+18557402391", "Cloaking: the helpline page was shown to mobile-from-search",
			"The page asks for: ", "remote access"} {
			if !strings.Contains(text, want) {
				t.Errorf("to %s: the text lacks %q:\n%s", m.To, want, text)
			}
		}
		for _, p := range private {
			if strings.Contains(string(m.Data), p) {
				t.Errorf("to %s: the message names the sender's own server %s", m.To, p)
			}
		}
	}
	if !to[byDest[store.DestRegistrar].Recipient] || !to[capturetest.HostingAbuse] {
		t.Errorf("mail went to %v, want the registrar's desk %s and the hosting desk", to, byDest[store.DestRegistrar].Recipient)
	}
	for _, d := range []string{store.DestRegistrar, store.DestHosting, store.DestNetcraft} {
		if r, _, _ := db.AbuseReportByID(ctx, byDest[d].ID); r.State != store.ReportSent {
			t.Errorf("%s report is %s, want sent", d, r.State)
		}
	}

	// No action: on the next business day nothing is due; two business days after sending
	// (over the weekend) a follow-up is.
	sent := captured.Add(3 * time.Minute)
	rungs, _ := Ladder(ctx, db, DefaultActionDays, AddBusinessDays(sent, 1))
	for _, g := range rungs {
		if g.Due != "" {
			t.Errorf("report %d is due a %s one business day after sending", g.Report.ID, g.Due)
		}
	}
	due := AddBusinessDays(sent, DefaultActionDays)
	if due.Weekday() != time.Tuesday {
		t.Errorf("two business days after a Friday is %s", due.Weekday())
	}
	follow, err := FollowUps(ctx, db, reporter, outbox, DefaultActionDays, "jane", due)
	if err != nil || len(follow) != 2 {
		t.Fatalf("follow-ups: %d %v, want one to each desk", len(follow), err)
	}
	if r, _, _ := db.AbuseReportByID(ctx, byDest[store.DestRegistrar].ID); r.State != store.ReportNoAnswer {
		t.Errorf("the unanswered report is %s", r.State)
	}

	// The site is taken down: NXDOMAIN now. The re-check moves the reports to actioned.
	dark := enrichtest.StartDNS(t)
	checks, err := Status(ctx, db, &Checker{DNS: &enrich.Resolver{Servers: []string{dark.Addr}, Timeout: time.Second}, Guard: guard})
	if err != nil || len(checks) != 1 || checks[0].State != store.StateDark {
		t.Fatalf("status: %+v %v", checks, err)
	}
	for _, d := range []string{store.DestRegistrar, store.DestHosting} {
		r, _, _ := db.AbuseReportByID(ctx, byDest[d].ID)
		ev, _ := db.ReportEvents(ctx, r.ID)
		if r.State != store.ReportActioned || ev[len(ev)-1].State != store.ReportActioned {
			t.Errorf("%s report is %s after the takedown (%+v)", d, r.State, ev)
		}
	}
}

// A site whose host removed the kit but that still answers is cleared, and the takedown is
// recorded; while the kit is still shown to one visitor profile (it cloaks from the others),
// the site is live, not cleared.
func TestStatusSeesAClearedSite(t *testing.T) {
	testkit.NeedBrowser(t)
	kit, err := os.ReadFile("../../testdata/site/helpline.html")
	if err != nil {
		t.Fatal(err)
	}
	var removed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if !removed.Load() && strings.Contains(r.UserAgent(), "Mobile") && strings.Contains(r.Referer(), "google.") {
			w.Write(kit)
			return
		}
		w.Write([]byte(`<html><head><title></title></head><body></body></html>`))
	}))
	defer srv.Close()
	const domain = "kit-gone.test"
	rewrite := func(hostport string) string {
		if h, _, _ := net.SplitHostPort(hostport); h == domain {
			return srv.Listener.Addr().String()
		}
		return hostport
	}
	dnsSrv := enrichtest.StartDNS(t)
	dnsSrv.Add(domain + ". 60 IN A 127.0.0.1")
	guard := allowOnly(t, "127.0.0.1")
	looker := &capture.Capturer{Rules: testkit.DefaultRules(t), Fetcher: &site.Fetcher{Guard: guard, Timeout: 5 * time.Second, Rewrite: rewrite},
		Renderer: &site.Renderer{Timeout: 60 * time.Second, Rewrite: rewrite}}
	defer looker.Renderer.Close()
	checker := &Checker{DNS: &enrich.Resolver{Servers: []string{dnsSrv.Addr}, Timeout: time.Second}, Guard: guard, Gone: looker.Gone,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
		}}
	st := &fakeStatusStore{open: []store.ReportedDomain{{Name: domain, ReportID: 1}}, seenUp: map[string]bool{domain: true}}

	checks, err := Status(context.Background(), st, checker)
	if err != nil || len(checks) != 1 || checks[0].State != store.StateLive || len(st.takedowns) != 0 {
		t.Fatalf("with the kit shown to phones from search: %+v %v, takedowns %v", checks, err, st.takedowns)
	}
	removed.Store(true)
	checks, err = Status(context.Background(), st, checker)
	if err != nil || len(checks) != 1 || checks[0].State != store.StateCleared {
		t.Fatalf("with the kit removed: %+v %v", checks, err)
	}
	for _, want := range []string{"scam page is gone", "mobile-from-search got a blank page (HTTP 200)", "answers on 127.0.0.1"} {
		if !strings.Contains(checks[0].Detail, want) {
			t.Errorf("detail %q lacks %q", checks[0].Detail, want)
		}
	}
	if len(st.takedowns) != 1 || st.takedowns[0] != domain {
		t.Errorf("takedowns %v", st.takedowns)
	}
}
