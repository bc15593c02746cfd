package site

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/internal/safe"
)

// Report is one site check as the commands print it and the store keeps it.
type Report struct {
	Domain   string            `json:"domain"`
	URL      string            `json:"url,omitempty"`
	Status   int               `json:"status,omitempty"`
	Error    string            `json:"error,omitempty"`
	Title    string            `json:"title,omitempty"`
	SHA256   string            `json:"sha256,omitempty"`
	Phones   []rules.SitePhone `json:"phones"`
	Page     *Page             `json:"page,omitempty"`
	TLSH     string            `json:"tlsh,omitempty"`
	Similar  string            `json:"similar_to,omitempty"`
	Rendered bool              `json:"rendered,omitempty"`
	Chats    []string          `json:"chat_accounts,omitempty"`
	Kit      string            `json:"-"` // the known kit matched (similarity >= 0.5)
	Verdict  rules.SiteVerdict `json:"verdict"`
	Score    int               `json:"content_score"`
	Brand    string            `json:"brand,omitempty"`
	Reasons  []rules.Reason    `json:"reasons"`
	Indicate []string          `json:"indicators"`
}

// Analyze extracts and scores a page body. html says how to read it: HTML is parsed, anything
// else (JSX, RST, templates) is read as text. lib (may be nil) holds the brand reference pages
// and known kits the page is compared with.
func Analyze(rs *rules.RuleSet, lib *Library, domain string, body []byte, isHTML bool, base *url.URL) *Report {
	var rep *Report
	// The parsers below (x/net/html, TLSH, phonenumbers) read what an attacker wrote; a crash
	// in one of them makes this page unreadable, not the process dead.
	if err := safe.Do("page analysis", func() error { rep = analyze(rs, lib, domain, body, isHTML, base); return nil }); err != nil {
		sum := sha256.Sum256(body)
		return &Report{Domain: domain, SHA256: hex.EncodeToString(sum[:]), Error: err.Error(), Verdict: rules.SiteUnreachable,
			Phones: []rules.SitePhone{}, Indicate: []string{}, Reasons: []rules.Reason{{Rule: "site:unreadable", Detail: err.Error()}}}
	}
	return rep
}

func analyze(rs *rules.RuleSet, lib *Library, domain string, body []byte, isHTML bool, base *url.URL) *Report {
	sum := sha256.Sum256(body)
	rep := &Report{Domain: domain, SHA256: hex.EncodeToString(sum[:])}
	var p *Page
	if isHTML {
		p = ExtractHTML(body, base)
	} else {
		p = ExtractText(body)
	}
	phones := Phones(p.TelLinks, p.Text)
	facts := p.Facts(phones)
	facts.Domain = domain
	fp := NewFingerprint(domain, "", "", p.Markup, p.Text)
	rep.TLSH = fp.TLSH
	if lib != nil {
		if best, sim := lib.Closest(fp); best != nil {
			facts.Similarity, facts.SimilarTo = sim, best.Kind+" "+best.Name
			if sim >= 0.5 {
				rep.Similar = fmt.Sprintf("%s %s (%.0f%%)", best.Kind, best.Name, 100*sim)
				if best.Kind == "kit" {
					rep.Kit = best.Name
				}
			}
		}
	}
	res := rs.ScoreSite(facts)
	rep.Title, rep.Page, rep.Phones, rep.Chats = p.Title, p, phones, p.Chats
	if rep.Phones == nil {
		rep.Phones = []rules.SitePhone{}
	}
	rep.Verdict, rep.Score, rep.Brand, rep.Reasons, rep.Indicate = res.Verdict, res.Score, res.Brand, res.Reasons, res.Indicators
	return rep
}

// CheckLive fetches target and analyzes it; with a renderer, a page that is only a script
// shell is rendered in the browser and the built page is analyzed instead. A fetch that fails
// is an "unreachable" report with the reason.
func CheckLive(ctx context.Context, rs *rules.RuleSet, lib *Library, f *Fetcher, r *Renderer, target string) (*Report, *Fetched) {
	got := f.Fetch(ctx, target)
	name := target
	if u, err := url.Parse(target); err == nil && u.Host != "" {
		name = u.Hostname()
	}
	if got.Status == 0 {
		reason := "no answer"
		if got.Err != nil {
			reason = got.Err.Error()
		}
		return &Report{Domain: name, URL: got.URL, Error: reason, Verdict: rules.SiteUnreachable, Phones: []rules.SitePhone{},
			Reasons: []rules.Reason{{Rule: "site:unreachable", Detail: reason}}, Indicate: []string{}}, got
	}
	base, _ := url.Parse(got.FinalURL)
	isHTML := IsHTML(got.ContentType, got.Body)
	rep := Analyze(rs, lib, name, got.Body, isHTML, base)
	if r != nil && isHTML && NeedsRender(rep.Page) {
		if dom, err := r.Render(ctx, got.FinalURL, got.Addr); err == nil && len(dom) > 0 {
			if built := Analyze(rs, lib, name, dom, true, base); built.Score >= rep.Score {
				built.Rendered = true
				rep = built
			}
		} else if err != nil {
			rep.Error = "render: " + err.Error()
		}
	}
	rep.URL, rep.Status = got.FinalURL, got.Status
	if got.Err != nil {
		rep.Error = "partial page: " + got.Err.Error()
	}
	return rep, got
}
