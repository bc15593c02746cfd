package site

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
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
	// Pages are the other pages of the site the verdict was reached on (a site check reads
	// the landing page and the contact, support, setup or error pages it links to).
	Pages []PageEvidence `json:"pages,omitempty"`

	facts *rules.SiteFacts
}

// PageEvidence is what one page of a site showed on its own.
type PageEvidence = watcher.PageEvidence

// Analyze extracts and scores a page body. html says how to read it: HTML is parsed, anything
// else (JSX, RST, templates) is read as text. lib (may be nil) holds the brand reference pages
// and known kits the page is compared with.
func Analyze(rs *rules.RuleSet, lib *Library, domain string, body []byte, isHTML bool, base *url.URL) *Report {
	return AnalyzeCut(rs, lib, domain, body, isHTML, base, Cut{})
}

// AnalyzeCut is Analyze of a page read with readSqueezed: its padding is a scam sign, and a
// page still cut at the limit says so in its reasons and indicators (the rest was not read,
// and is not taken for benign).
func AnalyzeCut(rs *rules.RuleSet, lib *Library, domain string, body []byte, isHTML bool, base *url.URL, cut Cut) *Report {
	var rep *Report
	// The parsers below (x/net/html, TLSH, phonenumbers) read what an attacker wrote; a crash
	// in one of them makes this page unreadable, not the process dead.
	if err := safe.Do("page analysis", func() error { rep = analyze(rs, lib, domain, body, isHTML, base, cut); return nil }); err != nil {
		sum := sha256.Sum256(body)
		return &Report{Domain: domain, SHA256: hex.EncodeToString(sum[:]), Error: err.Error(), Verdict: rules.SiteUnreachable,
			Phones: []rules.SitePhone{}, Indicate: []string{}, Reasons: []rules.Reason{{Rule: "site:unreadable", Detail: err.Error()}}}
	}
	return rep
}

func analyze(rs *rules.RuleSet, lib *Library, domain string, body []byte, isHTML bool, base *url.URL, cut Cut) *Report {
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
	facts.Domain, facts.Padding = domain, cut.Padding
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
	rep.facts = facts
	rep.Title, rep.Page, rep.Phones, rep.Chats = p.Title, p, phones, p.Chats
	if rep.Phones == nil {
		rep.Phones = []rules.SitePhone{}
	}
	rep.Verdict, rep.Score, rep.Brand, rep.Reasons, rep.Indicate = res.Verdict, res.Score, res.Brand, res.Reasons, res.Indicators
	if cut.Truncated {
		rep.Reasons = append(rep.Reasons, rules.Reason{Rule: "site:cut",
			Detail: fmt.Sprintf("the page was cut after %d KiB read (%d KiB of padding skipped): what follows was not read", len(body)>>10, cut.Padding>>10)})
		rep.Indicate = append(rep.Indicate, "page cut at the size limit")
	}
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
	rep := AnalyzeCut(rs, lib, name, got.Body, isHTML, base, Cut{Padding: got.Padding, Truncated: got.Truncated})
	if r != nil && isHTML && NeedsRender(rep.Page) {
		if dom, err := r.Render(ctx, got.FinalURL, got.Addr, scriptPins(ctx, f, rep.Page, base)); err == nil && len(dom) > 0 {
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

// maxScriptHosts bounds the other hosts a render may load the page's scripts from.
const maxScriptHosts = 8

// scriptPins resolves the hosts the page loads scripts from, each through the guard: the
// renderer may reach them, at those addresses only, so that a kit built by scripts from a
// CDN or its own asset host renders as a browser would show it.
func scriptPins(ctx context.Context, f *Fetcher, p *Page, base *url.URL) map[string]string {
	if p == nil || base == nil {
		return nil
	}
	pins := map[string]string{}
	for _, h := range p.ScriptHosts {
		if len(pins) >= maxScriptHosts {
			break
		}
		if h == "" || strings.EqualFold(h, base.Hostname()) {
			continue
		}
		port := base.Port()
		if port == "" {
			port = "443"
		}
		ip, err := f.Guard.Resolve(ctx, h, port)
		if err != nil {
			continue // refused or unknown: the renderer will not reach it
		}
		pins[strings.ToLower(h)] = ip.String()
	}
	return pins
}

// MaxSitePages bounds the linked pages a site check reads beyond the landing page.
const MaxSitePages = 4

// pageHint says which links lead to the pages helpline kits put their number, chat and fake
// errors on.
var pageHint = regexp.MustCompile(`(?i)contact|support|help|setup|set-up|install|download|driver|error|chat|call|service|troubleshoot|fix|offline|start|assist|printer`)

// sitePages picks up to MaxSitePages links of p to pages of the same registrable domain that
// look like contact, support, setup, download or error pages.
func sitePages(rs *rules.RuleSet, p *Page, base *url.URL) []string {
	if p == nil || base == nil {
		return nil
	}
	home, err := rs.Normalize(base.Hostname())
	if err != nil || home.Registrable == "" {
		return nil
	}
	seen := map[string]bool{strings.TrimSuffix(base.String(), "/"): true}
	var out []string
	for _, l := range p.Links {
		if len(out) >= MaxSitePages {
			break
		}
		u, err := url.Parse(l.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			continue
		}
		n, err := rs.Normalize(u.Hostname())
		if err != nil || n.Registrable != home.Registrable {
			continue
		}
		key := strings.TrimSuffix(u.String(), "/")
		if seen[key] || !pageHint.MatchString(u.Path+" "+l.Text) {
			continue
		}
		seen[key] = true
		out = append(out, u.String())
	}
	return out
}

// JudgeSite scores the pages of one site together (see rules.MergeSiteFacts).
func JudgeSite(rs *rules.RuleSet, domain string, pages []*Report) rules.SiteResult {
	facts := make([]*rules.SiteFacts, 0, len(pages))
	for _, p := range pages {
		if p != nil && p.facts != nil {
			facts = append(facts, p.facts)
		}
	}
	merged := rules.MergeSiteFacts(facts)
	merged.Domain = domain
	return rs.ScoreSite(merged)
}

// CheckSite is CheckLive on the landing page, then on the pages of the same site it links to
// that look like contact, support, setup, download or error pages (at most MaxSitePages, each
// fetched the same guarded way), and a verdict on the site as a whole when that says more
// than the landing page alone. Each page's own verdict is kept in Pages.
func CheckSite(ctx context.Context, rs *rules.RuleSet, lib *Library, f *Fetcher, r *Renderer, target string) (*Report, *Fetched) {
	rep, got := CheckLive(ctx, rs, lib, f, r, target)
	if rep.Verdict == rules.SiteUnreachable || rep.Page == nil || got == nil {
		return rep, got
	}
	base, _ := url.Parse(got.FinalURL)
	pages := []*Report{rep}
	for _, u := range sitePages(rs, rep.Page, base) {
		if ctx.Err() != nil {
			break
		}
		sub, _ := CheckLive(ctx, rs, lib, f, r, u)
		if sub.Verdict == rules.SiteUnreachable {
			continue
		}
		pages = append(pages, sub)
		rep.Pages = append(rep.Pages, PageEvidence{URL: sub.URL, Verdict: sub.Verdict, Score: sub.Score, Indicators: sub.Indicate, Phones: sub.Phones})
	}
	if len(pages) == 1 {
		return rep, got
	}
	site := JudgeSite(rs, rep.Domain, pages)
	if !rules.StrongerSite(site.Verdict, site.Score, rep.Verdict, rep.Score) {
		return rep, got
	}
	rep.Verdict, rep.Score, rep.Brand, rep.Indicate = site.Verdict, site.Score, site.Brand, site.Indicators
	rep.Reasons = append(site.Reasons, rules.Reason{Rule: "site:pages", Detail: fmt.Sprintf("judged on %d pages of the site", len(pages))})
	for _, sub := range pages[1:] {
		rep.Phones = mergePhones(rep.Phones, sub.Phones)
		rep.Chats = mergeStrings(rep.Chats, sub.Chats)
		if rep.Kit == "" {
			rep.Kit = sub.Kit
		}
	}
	return rep, got
}

func mergePhones(a, b []rules.SitePhone) []rules.SitePhone {
	for _, p := range b {
		dup := false
		for _, q := range a {
			dup = dup || q.E164 == p.E164
		}
		if !dup {
			a = append(a, p)
		}
	}
	return a
}

func mergeStrings(a, b []string) []string {
	for _, s := range b {
		dup := false
		for _, t := range a {
			dup = dup || s == t
		}
		if !dup {
			a = append(a, s)
		}
	}
	return a
}

// Evidence is what this check of name saw, as the store keeps it and a case carries it, with
// the page body read (body) and every linked page's own evidence.
func (r *Report) Evidence(name string, at time.Time, body []byte) watcher.SiteEvidence {
	return watcher.SiteEvidence{Name: name, At: at, URL: r.URL, Status: r.Status, Title: r.Title, Verdict: r.Verdict, Score: r.Score,
		Brand: r.Brand, Reasons: r.Reasons, Indicators: r.Indicate, Phones: r.Phones, Chats: r.Chats, Kit: r.Kit, SHA256: r.SHA256,
		TLSH: r.TLSH, SimilarTo: r.Similar, Error: r.Error, Pages: r.Pages, Body: body}
}
