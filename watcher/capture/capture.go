// Package capture keeps the evidence an abuse desk acts on: for a site that showed content,
// each visitor profile's view of it (a screenshot with a band stating the URL, the UTC time
// and the serving address; the page as served and as built; the redirects, status, headers
// and live certificate), the network that hosts it, and whether it cloaks (shows its kit to
// some visitors only). Artefacts are named by their SHA-256 and stored as they are; the
// store keeps them content-addressed and never modifies them.
//
// Capturer.Capture makes one capture; Worker is the "capture" job handler.
package capture

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/idna"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/site"
)

// Profile is one kind of visitor a capture poses as.
type Profile struct {
	Name      string
	UserAgent string
	Referer   string
	Mobile    bool
}

// MobileUserAgent is a current phone browser's.
const MobileUserAgent = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"

// DefaultProfiles are the two visitors every capture poses as: a desktop browser that typed
// the address, and a phone that came from a search engine's results (the visitor helpline
// kits buy ads for, and the one cloaking kits show their page to).
var DefaultProfiles = []Profile{
	{Name: "desktop", UserAgent: site.DefaultUserAgent},
	{Name: "mobile-from-search", UserAgent: MobileUserAgent, Referer: "https://www.google.com/", Mobile: true},
}

// Artefact is one kept file of evidence.
type Artefact struct {
	SHA256    string
	MediaType string
	Data      []byte
}

func artefact(media string, data []byte) Artefact {
	sum := sha256.Sum256(data)
	return Artefact{SHA256: hex.EncodeToString(sum[:]), MediaType: media, Data: data}
}

// Capturer makes captures.
type Capturer struct {
	Rules   *rules.RuleSet
	Library *site.Library
	Fetcher *site.Fetcher
	// Renderer takes the screenshots (and builds script-made pages); nil: no screenshot, and
	// the capture says so.
	Renderer *site.Renderer
	// Hosting finds the serving network (nil: not looked up).
	Hosting  *enrich.Hosting
	Profiles []Profile // default DefaultProfiles
	Now      func() time.Time
}

func (c *Capturer) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

// visit is one profile's fetch and analysis before rendering.
type visit struct {
	profile Profile
	shot    *watcher.Shot
	got     *site.Fetched
	rep     *site.Report
	html    bool
}

// Capture visits name as every profile and returns what each was shown, with the artefacts
// to keep. It never fails as a whole: what could not be done is in the shots' errors.
func (c *Capturer) Capture(ctx context.Context, name string) (*watcher.Capture, []Artefact) {
	profiles := c.Profiles
	if len(profiles) == 0 {
		profiles = DefaultProfiles
	}
	out := &watcher.Capture{Name: name, At: c.now()}
	var arts []Artefact
	keep := func(media string, data []byte) string {
		if len(data) == 0 {
			return ""
		}
		a := artefact(media, data)
		for _, have := range arts {
			if have.SHA256 == a.SHA256 {
				return a.SHA256
			}
		}
		arts = append(arts, a)
		return a.SHA256
	}
	visits := make([]*visit, 0, len(profiles))
	for _, p := range profiles {
		v := &visit{profile: p, shot: &watcher.Shot{Profile: p.Name, UserAgent: p.UserAgent, Referer: p.Referer, At: c.now(),
			Indicators: []string{}, Phones: []rules.SitePhone{}}}
		visits = append(visits, v)
		got := c.Fetcher.FetchAs(ctx, name, site.Visitor{UserAgent: p.UserAgent, Referer: p.Referer})
		v.got = got
		s := v.shot
		s.URL, s.FinalURL, s.Redirects, s.Address, s.Status = got.URL, got.FinalURL, got.Redirects, got.Addr, got.Status
		s.Headers = boundedHeaders(got.Header)
		if got.Status == 0 {
			s.Verdict = rules.SiteUnreachable
			s.Error = "no answer"
			if got.Err != nil {
				s.Error = got.Err.Error()
			}
			continue
		}
		if got.Err != nil {
			s.Error = "partial page: " + got.Err.Error()
		}
		if len(got.PeerCert) > 0 {
			s.TLS = certificateSeen(got.PeerCert)
			keep("application/pkix-cert", got.PeerCert)
		}
		s.HTML = keep("text/html", got.Body)
		base, _ := url.Parse(got.FinalURL)
		v.html = site.IsHTML(got.ContentType, got.Body)
		v.rep = site.AnalyzeCut(c.Rules, c.Library, hostOf(got.FinalURL, name), got.Body, v.html, base, site.Cut{Padding: got.Padding, Truncated: got.Truncated})
	}
	c.render(ctx, visits, keep)
	for _, v := range visits {
		if v.rep != nil {
			judge(v.shot, v.rep)
		}
		out.Shots = append(out.Shots, *v.shot)
	}
	summarize(out)
	if c.Hosting != nil {
		if addr := servingAddress(out); addr != "" {
			h := c.Hosting.Lookup(ctx, addr)
			out.Hosting = &h
		}
	}
	return out, arts
}

// render takes each answered profile's screenshot (and built DOM) in one browser run per
// final URL, and keeps the built page when it says more than the served one.
func (c *Capturer) render(ctx context.Context, visits []*visit, keep func(string, []byte) string) {
	if c.Renderer == nil || !c.Renderer.Available() {
		for _, v := range visits {
			if v.got != nil && v.got.Status > 0 {
				v.shot.Error = joinErr(v.shot.Error, "no screenshot: no browser to render with")
			}
		}
		return
	}
	type group struct {
		target, addr string
		visits       []*visit
	}
	var groups []*group
	for _, v := range visits {
		if v.got == nil || v.got.Status == 0 || v.got.Addr == "" || !v.html {
			continue
		}
		var g *group
		for _, have := range groups {
			if have.target == v.got.FinalURL && have.addr == v.got.Addr {
				g = have
			}
		}
		if g == nil {
			g = &group{target: v.got.FinalURL, addr: v.got.Addr}
			groups = append(groups, g)
		}
		g.visits = append(g.visits, v)
	}
	for _, g := range groups {
		views := make([]site.View, len(g.visits))
		for i, v := range g.visits {
			views[i] = site.View{UserAgent: v.profile.UserAgent, Referer: v.profile.Referer, Mobile: v.profile.Mobile}
		}
		results, err := c.Renderer.Capture(ctx, g.target, g.addr, nil, views)
		for i, v := range g.visits {
			if err != nil {
				v.shot.Error = joinErr(v.shot.Error, "no screenshot: "+err.Error())
				continue
			}
			r := results[i]
			if r.Err != nil {
				v.shot.Error = joinErr(v.shot.Error, "no screenshot: "+r.Err.Error())
				continue
			}
			if len(r.DOM) > 0 {
				base, _ := url.Parse(g.target)
				built := site.Analyze(c.Rules, c.Library, hostOf(g.target, ""), r.DOM, true, base)
				v.shot.RenderedHTML = keep("text/html", r.DOM)
				if rules.StrongerSite(built.Verdict, built.Score, v.rep.Verdict, v.rep.Score) {
					v.rep = built
				}
			}
			if len(r.Screenshot) > 0 {
				banded, err := WithBand(r.Screenshot, bandLines(v.shot))
				if err != nil {
					v.shot.Error = joinErr(v.shot.Error, err.Error())
					continue
				}
				v.shot.Screenshot = keep("image/png", banded)
			}
		}
	}
}

// bandLines is what the band of a shot's screenshot states.
func bandLines(s *watcher.Shot) []string {
	u := s.FinalURL
	if parsed, err := url.Parse(u); err == nil {
		if ascii, err := idna.ToASCII(parsed.Hostname()); err == nil && ascii != parsed.Hostname() {
			parsed.Host = strings.Replace(parsed.Host, parsed.Hostname(), ascii, 1)
			u = parsed.String()
		}
	}
	return []string{
		"URL: " + u,
		fmt.Sprintf("Captured %s UTC from %s (HTTP %d) as %s", s.At.UTC().Format("2006-01-02 15:04:05"), cmp.Or(s.Address, "?"), s.Status, s.Profile),
	}
}

// judge copies the analysis of a page into its shot.
func judge(s *watcher.Shot, rep *site.Report) {
	s.Verdict, s.Score, s.Brand, s.Title = rep.Verdict, rep.Score, rep.Brand, rep.Title
	s.Indicators = append([]string{}, rep.Indicate...)
	s.Phones = append([]rules.SitePhone{}, rep.Phones...)
	s.AsksFor = asksFor(rep)
	s.Blank = rep.Page == nil || len(strings.Fields(rep.Page.Text)) < 5
}

// asksFor says what the page asks its visitor for: payment, personal data, remote access.
func asksFor(rep *site.Report) []string {
	var out []string
	has := func(kind string) bool {
		return slices.ContainsFunc(rep.Reasons, func(r rules.Reason) bool { return r.Rule == "site:"+kind })
	}
	var fields []string
	if rep.Page != nil {
		fields = rep.Page.FormFields
	}
	field := func(words ...string) bool {
		for _, f := range fields {
			f = strings.ToLower(f)
			for _, w := range words {
				if strings.Contains(f, w) {
					return true
				}
			}
		}
		return false
	}
	if field("card", "cvv", "cvc", "expir", "iban", "payment") {
		out = append(out, "payment")
	}
	if has("lead-form") || field("email", "phone", "name", "address", "zip") {
		out = append(out, "personal data")
	}
	if has("remote-access") {
		out = append(out, "remote access")
	}
	return out
}

// summarize sets the capture's verdict (the strongest shot's) and whether it cloaks.
func summarize(c *watcher.Capture) {
	c.Verdict = rules.SiteUnreachable
	var shown, hidden []string
	for _, s := range c.Shots {
		if rules.StrongerSite(s.Verdict, s.Score, c.Verdict, c.Score) {
			c.Verdict, c.Score = s.Verdict, s.Score
		}
	}
	for _, s := range c.Shots {
		if s.Verdict.Flagged() {
			shown = append(shown, s.Profile)
		} else {
			hidden = append(hidden, s.Profile+" got "+pageShown(s))
		}
	}
	if len(shown) > 0 && len(hidden) > 0 {
		c.Cloaked = true
		c.Cloaking = fmt.Sprintf("the %s page was shown to %s; %s", c.Verdict, strings.Join(shown, ", "), strings.Join(hidden, "; "))
	}
}

// shown_ says what a shot that showed no abuse got.
func pageShown(s watcher.Shot) string {
	switch {
	case s.Status == 0:
		return "no answer"
	case s.Blank:
		return fmt.Sprintf("a blank page (HTTP %d)", s.Status)
	default:
		return fmt.Sprintf("a %s page (HTTP %d)", s.Verdict, s.Status)
	}
}

// Gone captures name again and reports whether its abuse is gone while the site still
// answers: no profile was shown a clone or helpline page (every profile is asked, so a
// cloaking kit that hides from one visitor is not taken for gone), and at least one profile
// got a page. A site that answers no profile is not judged here (the caller's probes are).
// detail says what each profile got.
func (c *Capturer) Gone(ctx context.Context, name string) (gone bool, detail string) {
	got, _ := c.Capture(ctx, name)
	if ctx.Err() != nil || got.Observed() {
		return false, ""
	}
	var seen []string
	answered := false
	for _, s := range got.Shots {
		answered = answered || s.Status > 0
		seen = append(seen, s.Profile+" got "+pageShown(s))
	}
	if !answered {
		return false, ""
	}
	return true, "the scam page is gone: " + strings.Join(seen, "; ")
}

// servingAddress is the address of the shot that shows the abuse, else of any that answered.
func servingAddress(c *watcher.Capture) string {
	if s := c.FlaggedShot(); s != nil && s.Address != "" {
		return s.Address
	}
	for _, s := range c.Shots {
		if s.Address != "" {
			return s.Address
		}
	}
	return ""
}

func certificateSeen(der []byte) *watcher.CertificateSeen {
	sum := sha256.Sum256(der)
	out := &watcher.CertificateSeen{SHA256: hex.EncodeToString(sum[:])}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return out
	}
	out.Subject, out.Issuer = cert.Subject.String(), cert.Issuer.String()
	out.DNSNames = cert.DNSNames
	if len(out.DNSNames) > 20 {
		out.DNSNames = out.DNSNames[:20]
	}
	out.Serial = cert.SerialNumber.Text(16)
	out.NotBefore, out.NotAfter = cert.NotBefore.UTC(), cert.NotAfter.UTC()
	return out
}

// maxHeaders bounds the response headers kept per shot (names, values per name, bytes).
const (
	maxHeaders      = 40
	maxHeaderValues = 4
	maxHeaderBytes  = 512
)

func boundedHeaders(h map[string][]string) map[string][]string {
	if len(h) == 0 {
		return nil
	}
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	out := map[string][]string{}
	for _, k := range names[:min(len(names), maxHeaders)] {
		vals := h[k]
		for _, v := range vals[:min(len(vals), maxHeaderValues)] {
			if len(v) > maxHeaderBytes {
				v = v[:maxHeaderBytes] + "..."
			}
			out[k] = append(out[k], v)
		}
	}
	return out
}

func hostOf(u, fallback string) string {
	if p, err := url.Parse(u); err == nil && p.Hostname() != "" {
		return p.Hostname()
	}
	return fallback
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
