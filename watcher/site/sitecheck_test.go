package site

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
)

// A kit spreads itself over pages: the landing page names the brand and the setup, the
// contact page has the number and the chat. Neither is enough alone; the site is.
func TestCheckSiteJudgesTheLinkedPagesTogether(t *testing.T) {
	var mu sync.Mutex
	asked := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked[r.Host+r.URL.Path]++
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		switch r.URL.Path {
		case "/":
			w.Write([]byte(`<html><head><title>Printer setup</title></head><body><h1>HP printer setup</h1>
<p>Set up your HP printer in minutes.</p>
<a href="/contact-us">Contact support</a> <a href="/about">About</a> <a href="/blog/recipes">Recipes</a>
<a href="http://unrelated.example/contact">Partner help</a> <a href="tel:x">x</a></body></html>`))
		case "/contact-us":
			w.Write([]byte(`<html><body><p>Talk to certified technicians now. Call toll free <a href="tel:+18882157421">+1 (888) 215-7421</a>.</p>
<script src="https://embed.tawk.to/5f00000000000000000000/default"></script></body></html>`))
		default:
			w.Write([]byte(`<html><body><p>Nothing here.</p></body></html>`))
		}
	}))
	defer srv.Close()
	local := strings.TrimPrefix(srv.URL, "http://")
	f := &Fetcher{Guard: onlyLocal127001, Timeout: 2 * time.Second, Rewrite: func(string) string { return local }}
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	landing, _ := CheckLive(context.Background(), rs, nil, f, nil, "hp-setup-desk.com")
	if landing.Verdict == rules.SiteHelpline || landing.Verdict == rules.SiteClone {
		t.Fatalf("the landing page alone already reads as %s: the test shows nothing", landing.Verdict)
	}
	rep, _ := CheckSite(context.Background(), rs, nil, f, nil, "hp-setup-desk.com")
	if rep.Verdict != rules.SiteHelpline && rep.Verdict != rules.SiteClone {
		t.Fatalf("site verdict %s %d: %+v", rep.Verdict, rep.Score, rep.Reasons)
	}
	if len(rep.Pages) != 1 || !strings.HasSuffix(rep.Pages[0].URL, "/contact-us") || len(rep.Phones) != 1 {
		t.Errorf("pages %+v, phones %v", rep.Pages, rep.Phones)
	}
	mu.Lock()
	defer mu.Unlock()
	for page := range asked {
		if strings.HasPrefix(page, "unrelated.example") || strings.HasSuffix(page, "/about") || strings.HasSuffix(page, "/blog/recipes") {
			t.Errorf("read %s: another site, or a page that is no contact, support, setup or error page", page)
		}
	}
}

// A helpline kit for no brand at all: support for sale, a number and a chat widget.
func TestBrandlessHelplineKit(t *testing.T) {
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	kit := &rules.SiteFacts{Reachable: true, Title: "Instant Tech Help",
		Text:   "Get instant help from certified technicians. Our support experts fix any issue remotely. Call now, we are available 24/7.",
		Hosts:  []string{"embed.tawk.to", "anydesk.com"},
		Phones: []rules.SitePhone{{E164: "+18882157421", TollFree: true, Source: "tel"}}}
	if res := rs.ScoreSite(kit); res.Verdict != rules.SiteHelpline || res.Brand != "" {
		t.Errorf("brandless kit: %s %d brand %q %+v", res.Verdict, res.Score, res.Brand, res.Reasons)
	}
	// A shop's contact page: a number and "customer service" but nothing sold as tech support.
	shop := &rules.SiteFacts{Reachable: true, Title: "Contact", Text: "Questions about your order? Our customer service answers Monday to Friday.",
		Phones: []rules.SitePhone{{E164: "+18882157421", TollFree: true, Source: "tel"}}}
	if res := rs.ScoreSite(shop); res.Verdict != rules.SiteBenign {
		t.Errorf("a shop's contact page: %s %d %+v", res.Verdict, res.Score, res.Reasons)
	}
	// Tech support for sale with a number, and nothing else: one sign is not a kit.
	one := &rules.SiteFacts{Reachable: true, Text: "We offer technical support for small offices.",
		Phones: []rules.SitePhone{{E164: "+15124624118", Source: "text"}}}
	if res := rs.ScoreSite(one); res.Verdict != rules.SiteBenign {
		t.Errorf("one sign: %s %d %+v", res.Verdict, res.Score, res.Reasons)
	}
}

func TestMergeSiteFacts(t *testing.T) {
	a := &rules.SiteFacts{Reachable: true, Title: "A", Text: "HP printer setup", Hosts: []string{"x.example"}, Similarity: 0.2, SimilarTo: "ref"}
	b := &rules.SiteFacts{Reachable: true, Title: "B", Text: "call now", Hosts: []string{"x.example", "embed.tawk.to"},
		Phones: []rules.SitePhone{{E164: "+18882157421"}, {E164: "+18882157421"}}, Similarity: 0.6, SimilarTo: "kit"}
	m := rules.MergeSiteFacts([]*rules.SiteFacts{a, nil, b})
	if m.Title != "A | B" || !strings.Contains(m.Text, "HP printer setup") || !strings.Contains(m.Text, "call now") ||
		len(m.Hosts) != 2 || len(m.Phones) != 1 || m.Similarity != 0.6 || m.SimilarTo != "kit" {
		t.Errorf("merged %+v", m)
	}
}
