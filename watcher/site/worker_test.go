package site

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

func TestWorkerStoresEvidenceLinksCampaignsAndRechecks(t *testing.T) {
	clone := fixture(t, "clone.html")
	sameKitOtherName := []byte(strings.ReplaceAll(string(clone), "123.hp.com", "hp-setup.example"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.Host)
		if host == "" {
			host = r.Host
		}
		switch host {
		case "hp-printer-setup-help.com":
			w.Write(clone)
		case "hp-setup-assist.net":
			w.Write(sameKitOtherName) // another domain, the same toll-free number
		case "canon-printer-support-247.com":
			w.Write(fixture(t, "helpline.html"))
		default:
			http.Error(w, "no", http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	local := srv.Listener.Addr().String()
	fetcher := &Fetcher{Timeout: 2 * time.Second, Guard: onlyLocal127001, Rewrite: func(hostport string) string {
		if strings.HasPrefix(hostport, "epson-down.com:") {
			return "127.0.0.1:1" // nothing listens: the site is down
		}
		return local
	}}
	db, err := store.Open(context.Background(), storetest.Where(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs := ruleSet(t)
	sc := rs.NewScorer()
	var batch []store.Sighting
	for _, n := range []string{"hp-printer-setup-help.com", "hp-setup-assist.net", "canon-printer-support-247.com", "epson-down.com"} {
		r := sc.Score(n)
		r.Verdict = rules.VerdictWatch // stored regardless of the name's own score
		batch = append(batch, store.Sighting{Result: r, At: time.Now(), Cert: watcher.Certificate{Index: -1}})
	}
	if _, err := db.Save(context.Background(), batch, store.Counts{}); err != nil {
		t.Fatal(err)
	}
	w := &Worker{Store: db, Rules: rs, Fetcher: fetcher}
	q := &queue.Runner{Store: db, Drain: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Kinds: []queue.Kind{{Name: store.KindSite, Handle: w.Handle, Workers: 1}}}
	if err := q.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	checks, err := db.LatestSiteChecks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]rules.SiteVerdict{"hp-printer-setup-help.com": rules.SiteClone, "hp-setup-assist.net": rules.SiteClone,
		"canon-printer-support-247.com": rules.SiteHelpline, "epson-down.com": rules.SiteUnreachable} {
		if c := checks[name]; c == nil || c.Verdict != want {
			t.Errorf("%s: %+v, want %s", name, c, want)
		}
	}
	hp := checks["hp-printer-setup-help.com"]
	if hp.SHA256 == "" || hp.TLSH == "" || hp.Status != 200 || len(hp.Phones) != 1 || hp.Title == "" {
		t.Errorf("evidence %+v", hp)
	}
	// The two copies of the kit share a number and a chat account: two links of one campaign.
	cs, _ := db.Campaigns(context.Background())
	got := map[string]int{}
	for _, c := range cs {
		got[c.Kind+" "+c.Value] = len(c.Domains)
	}
	if len(cs) != 2 || got["phone +18882157421"] != 2 || got["chat tawk.to/000000000000000000000000"] != 2 {
		t.Errorf("campaigns %+v", cs)
	}
	// The case's score carries the site's reasons; both kits also the known number, whichever
	// was checked first (each case is rescored when the other's check links the number).
	for _, name := range []string{"hp-setup-assist.net", "hp-printer-setup-help.com"} {
		c, _, _ := db.Case(context.Background(), name)
		var rulesSeen []string
		for _, r := range c.Score.Reasons {
			rulesSeen = append(rulesSeen, r.Rule)
		}
		if !strings.Contains(strings.Join(rulesSeen, " "), "site:clone") || !strings.Contains(strings.Join(rulesSeen, " "), "site:known-phone") {
			t.Errorf("%s: reasons %v", name, rulesSeen)
		}
	}
	// The site that was down is due again in an hour (its first re-check); the others are done.
	again, _ := db.ClaimJobs(context.Background(), "w", []string{store.KindSite}, 10, time.Now().Add(61*time.Minute), time.Minute, false)
	if len(again) != 1 || again[0].Registrable != "epson-down.com" || again[0].Run != 1 {
		t.Errorf("re-check queue: %+v", again)
	}
}

// A site check run as a job keeps what every linked page showed: the case's stored evidence
// carries the contact page with its verdict and number, as findings and the report show it.
func TestWorkerKeepsPerPageEvidence(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/":
			w.Write([]byte(`<html><head><title>Printer setup</title></head><body><h1>HP printer setup</h1>
<p>Set up your HP printer in minutes.</p><a href="/contact-us">Contact support</a></body></html>`))
		case "/contact-us":
			w.Write([]byte(`<html><body><p>Talk to certified technicians now. Call toll free <a href="tel:+18882157421">+1 (888) 215-7421</a>.</p></body></html>`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	local := srv.Listener.Addr().String()
	fetcher := &Fetcher{Timeout: 2 * time.Second, Guard: onlyLocal127001, Rewrite: func(string) string { return local }}
	db, err := store.Open(context.Background(), storetest.Where(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs := ruleSet(t)
	r := rs.NewScorer().Score("hp-setup-desk.com")
	r.Verdict = rules.VerdictWatch
	if _, err := db.Save(context.Background(), []store.Sighting{{Result: r, At: time.Now(), Cert: watcher.Certificate{Index: -1}}}, store.Counts{}); err != nil {
		t.Fatal(err)
	}
	w := &Worker{Store: db, Rules: rs, Fetcher: fetcher}
	q := &queue.Runner{Store: db, Drain: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Kinds: []queue.Kind{w.Kind(1)}}
	if err := q.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	c, ok, err := db.Case(context.Background(), "hp-setup-desk.com")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	var pages []watcher.PageEvidence
	for _, s := range c.Sites {
		pages = append(pages, s.Pages...)
	}
	if len(pages) == 0 {
		t.Fatalf("the case's site evidence has no pages: %+v", c.Sites)
	}
	contact := pages[0]
	if !strings.HasSuffix(contact.URL, "/contact-us") || len(contact.Phones) != 1 || contact.Phones[0].E164 != "+18882157421" {
		t.Errorf("contact page evidence: %+v", contact)
	}
	if c.Sites[0].Title == "" || c.Sites[0].SHA256 == "" {
		t.Errorf("the case carries less than the store kept: %+v", c.Sites[0])
	}
}
