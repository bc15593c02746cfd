package rules

import (
	"fmt"
	"sort"
	"strings"
)

// SiteVerdict is what a site check concluded about a page.
type SiteVerdict string

const (
	SiteClone       SiteVerdict = "clone"       // copies a brand's setup or support flow
	SiteHelpline    SiteVerdict = "helpline"    // pushes a phone number, chat or remote session for a brand's printers
	SiteParked      SiteVerdict = "parked"      // a parking or for-sale page
	SiteBenign      SiteVerdict = "benign"      // nothing of the above
	SiteUnreachable SiteVerdict = "unreachable" // no page could be fetched
)

// SitePhone is a phone number found on a page.
type SitePhone struct {
	E164     string `json:"e164"`
	TollFree bool   `json:"toll_free"`
	Source   string `json:"source"` // "tel" (a tel: link) or "text"
}

// SiteFacts are what the site check extracted from a page; the rules score them.
type SiteFacts struct {
	// Domain is the name the page was served under (or claimed for a saved page); a brand's
	// own domain copying its own wording is not a clone.
	Domain    string
	Reachable bool
	Title     string
	// Text is the page's visible text (or a non-HTML file's text).
	Text string
	// Hosts are the hosts of links, scripts, frames and form actions.
	Hosts      []string
	FormFields []string // names, ids and placeholders of form inputs
	Images     []string // image file names
	Phones     []SitePhone
	// Similarity to the closest brand reference page or known kit (0-1), and which.
	Similarity float64
	SimilarTo  string
	// Padding is how many bytes of long comments and blank runs the page carried: kits pad
	// their page to push it past a reader's size limit.
	Padding int64
}

// PaddedBytes is the padding from which a page counts as padded: an ordinary page's comments
// and indentation stay far under it.
const PaddedBytes = 256 << 10

// SiteResult is the site check's verdict with its reasons.
type SiteResult struct {
	Verdict    SiteVerdict `json:"verdict"`
	Score      int         `json:"content_score"`
	Brand      string      `json:"brand,omitempty"`
	Reasons    []Reason    `json:"reasons"`
	Indicators []string    `json:"indicators"`
}

// siteScoreKinds are the keys of site.points: what a page can score for.
var siteScoreKinds = []string{"brand", "brand-copy", "printer", "fake-flow", "problem", "call-to-action", "phone", "toll-free",
	"chat-widget", "remote-access", "disclaimer", "lead-form", "similarity", "known-phone", "support", "padding"}

// ScoreSite reads the facts of one page. A brand or printer context is needed for anything to
// count as a scam sign: "call now" on a pizza site is not a helpline scam.
func (rs *RuleSet) ScoreSite(f *SiteFacts) SiteResult {
	sp := rs.Source.Site
	res := SiteResult{Verdict: SiteBenign, Reasons: []Reason{}, Indicators: []string{}}
	if !f.Reachable {
		res.Verdict = SiteUnreachable
		return res
	}
	words := newWordIndex(strings.ToLower(f.Title + " \n " + f.Text))
	hosts := strings.ToLower(strings.Join(f.Hosts, " "))
	points := func(kind string) int { return sp.Points[kind] }
	add := func(kind, detail string) {
		res.Reasons = append(res.Reasons, Reason{Rule: "site:" + kind, Points: points(kind), Detail: detail})
		res.Score += points(kind)
	}
	// found lists the phrases of list that occur in the text (as word sequences) or, when
	// inHosts, in the hosts.
	found := func(list []string, inText, inHosts bool) []string {
		var hits []string
		for _, p := range list {
			p = strings.ToLower(p)
			if (inText && words.has(p)) || (inHosts && strings.Contains(hosts, p)) {
				hits = append(hits, p)
			}
		}
		return hits
	}

	// Brand: the brand named most often as a whole word (tokens and product lines).
	best, bestCount := -1, 0
	for i, b := range rs.brands {
		n := 0
		for _, tok := range b.tokens {
			n += words.count(tok)
		}
		// Product lines name the brand too (OfficeJet, PIXMA, EcoTank), unless they are
		// ordinary words.
		spec := &rs.Source.Brands[i]
		for _, prod := range spec.Products {
			if !b.common[prod] {
				n += words.count(prod)
			}
		}
		if n > bestCount {
			best, bestCount = i, n
		}
	}
	// A logo named after the brand ("hp-logo.png", "canonlogo.svg") is brand evidence too, and
	// names the brand when the text does not.
	var logos []string
	imgWords := newWordIndex(strings.ToLower(strings.Join(f.Images, " ")))
	for i, b := range rs.brands {
		if best >= 0 && i != best {
			continue
		}
		for _, tok := range b.tokens {
			for _, word := range []string{tok, tok + "logo", "logo" + tok} {
				if imgWords.count(word) > 0 {
					logos = append(logos, word)
					if best < 0 {
						best, bestCount = i, 1
					}
				}
			}
		}
	}
	brandCopy := found(sp.BrandCopy, true, true)
	if len(logos) > 0 {
		brandCopy = append(brandCopy, "brand image "+strings.Join(logos, ", "))
	}
	ownedLinks := 0
	if best >= 0 {
		for _, o := range rs.brands[best].owned {
			if strings.Contains(hosts, o) {
				ownedLinks++
			}
		}
	}
	printer := 0
	for _, w := range rs.Source.PrinterWords {
		printer += words.count(w)
	}
	// A brand name alone is no context ("HP-UX" in a manual): the page must be about printers
	// or copy the brand.
	context := printer > 0 || len(brandCopy) > 0
	if bestCount > 0 {
		res.Brand = rs.brands[best].name
		add("brand", fmt.Sprintf("names %s %d time(s)", res.Brand, bestCount))
	}
	if len(brandCopy) > 0 || ownedLinks > 0 {
		detail := strings.Join(brandCopy, ", ")
		if ownedLinks > 0 {
			detail = strings.TrimPrefix(detail+fmt.Sprintf(", links to %d of the brand's own domains", ownedLinks), ", ")
		}
		add("brand-copy", "copies the brand's wording: "+detail)
		res.Indicators = append(res.Indicators, brandCopy...)
	}
	if printer > 0 {
		add("printer", fmt.Sprintf("printer vocabulary %d time(s)", printer))
	}
	parked := found(sp.Parked, true, false)
	// Without a brand or printer, a page is still a helpline kit, whatever brand it wears,
	// when it sells support or a remote session and gives the means to reach the
	// "technician": a phone number, a chat widget or a remote-access tool, with at least one
	// more sign (below). Anything less is left alone.
	support := found(sp.Support, true, false)
	remote := found(sp.RemoteAccess, true, true)
	contact := len(f.Phones) > 0 || len(found(sp.ChatWidgets, true, true)) > 0 || len(remote) > 0
	if !context && ((len(support) == 0 && len(remote) == 0) || !contact) {
		if len(parked) > 0 {
			res.Verdict = SiteParked
			res.Indicators = append(res.Indicators, parked...)
			res.Reasons = append(res.Reasons, Reason{Rule: "site:parked", Detail: "parking page: " + strings.Join(parked, ", ")})
		}
		res.Score = 0 // scam signs without a brand, printer or support context are not this kind of scam
		return finishSite(res)
	}
	if len(support) > 0 {
		add("support", "sells support: "+strings.Join(support, ", "))
		res.Indicators = append(res.Indicators, support...)
	}
	signs := 0
	group := func(kind string, hits []string, detail string) {
		if len(hits) == 0 {
			return
		}
		signs++
		add(kind, detail+": "+strings.Join(hits, ", "))
		res.Indicators = append(res.Indicators, hits...)
	}
	// A flow is a sequence (downloading, connecting, failed): one phrase alone, such as "error
	// code" in a manual, is not one.
	flow := found(sp.FakeFlow, true, false)
	disclaims := found(sp.Disclaimers, true, false)
	// One phrase is a flow on a page that names a brand and disclaims it: a driver-download
	// kit offers the brand's "driver download" behind "we are an independent third party".
	if len(flow) < 2 && !(len(flow) == 1 && bestCount > 0 && len(disclaims) > 0) {
		flow = nil
	}
	group("fake-flow", flow, "fake install or error flow")
	problems := found(sp.Problems, true, false)
	group("problem", problems, "printer problems")
	cta := found(sp.CallToAction, true, false)
	group("call-to-action", cta, "pushes a call")
	chat := found(sp.ChatWidgets, true, true)
	group("chat-widget", chat, "live-chat widget")
	group("remote-access", remote, "remote access")
	group("disclaimer", disclaims, "disclaims the brand")
	// A helpline pushes its contact as the way to get help: a call to action, support for
	// sale, a chat or a remote session, a fake flow that ends there, a disclaimer of the brand
	// it wears, or the printer problems it offers to fix. A phone number in a footer ("or
	// call 1-800-...") pushes nothing: the brand's own pages and any shop's contact page have
	// one.
	pushed := len(cta) > 0 || len(support) > 0 || len(chat) > 0 || len(remote) > 0 || len(flow) > 0 || len(disclaims) > 0 || len(problems) > 0
	if len(f.Phones) > 0 {
		signs++
		tollFree := 0
		var nums []string
		for _, p := range f.Phones {
			nums = append(nums, p.E164)
			if p.TollFree {
				tollFree++
			}
		}
		add("phone", "shows "+strings.Join(nums, ", "))
		if tollFree > 0 {
			add("toll-free", fmt.Sprintf("%d toll-free number(s)", tollFree))
		}
	}
	fieldWords := newWordIndex(strings.ToLower(strings.Join(f.FormFields, " ")))
	var fields []string
	for _, lf := range sp.LeadFields {
		if fieldWords.has(strings.ToLower(lf)) {
			fields = append(fields, lf)
		}
	}
	if len(fields) > 0 {
		add("lead-form", "form asks for "+strings.Join(fields, ", "))
	}
	if f.Similarity >= 0.5 {
		add("similarity", fmt.Sprintf("%.0f%% similar to %s", 100*f.Similarity, f.SimilarTo))
	}
	if f.Padding >= PaddedBytes {
		signs++
		add("padding", fmt.Sprintf("%d KiB of comments and blank space pad the page (its content pushed past a reader's size limit)", f.Padding>>10))
	}
	res.Score = min(res.Score, 100)
	// A clone names the brand and copies it (its wording, its domains, its page) or walks the
	// victim through a fake install; on a domain the brand does not own.
	// Links to the brand's own domains alone copy nothing: genuine pages link there too.
	copies := len(brandCopy) > 0 || f.Similarity >= 0.5
	cloneShape := bestCount > 0 && (copies || len(flow) > 0)
	if f.Domain != "" {
		if n, err := rs.Normalize(f.Domain); err == nil && n.owner >= 0 {
			res.Verdict = SiteBenign
			res.Reasons = append(res.Reasons, Reason{Rule: "site:brand-owned", Detail: "the brand's own site: " + rs.brands[n.owner].name})
			res.Score = 0
			return finishSite(res)
		}
	}
	switch {
	case cloneShape && res.Score >= sp.Thresholds.Clone:
		res.Verdict = SiteClone
	case signs > 0 && pushed && res.Score >= sp.Thresholds.Helpline && (context || signs >= 2):
		res.Verdict = SiteHelpline
	}
	return finishSite(res)
}

// MergeSiteFacts joins the pages of one site (a landing page and the contact, support, setup
// or error pages it links to; or the files of one kit) into the facts of the site as a whole:
// a kit spreads its brand, its number, its chat widget and its fake error over several pages,
// none of which says everything alone.
func MergeSiteFacts(pages []*SiteFacts) *SiteFacts {
	out := &SiteFacts{}
	seenHost, seenField, seenImage, seenPhone := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	var text, titles strings.Builder
	for _, p := range pages {
		if p == nil {
			continue
		}
		if out.Domain == "" {
			out.Domain = p.Domain
		}
		out.Reachable = out.Reachable || p.Reachable
		out.Padding = max(out.Padding, p.Padding)
		if p.Title != "" && titles.Len() < 1024 {
			titles.WriteString(p.Title)
			titles.WriteString(" | ")
		}
		if text.Len() < maxSiteText {
			text.WriteString(p.Text[:min(len(p.Text), maxSiteText-text.Len())])
			text.WriteString("\n")
		}
		for _, h := range p.Hosts {
			if !seenHost[h] && len(seenHost) < 512 {
				seenHost[h] = true
				out.Hosts = append(out.Hosts, h)
			}
		}
		for _, ff := range p.FormFields {
			if !seenField[ff] && len(seenField) < 256 {
				seenField[ff] = true
				out.FormFields = append(out.FormFields, ff)
			}
		}
		for _, im := range p.Images {
			if !seenImage[im] && len(seenImage) < 256 {
				seenImage[im] = true
				out.Images = append(out.Images, im)
			}
		}
		for _, ph := range p.Phones {
			if !seenPhone[ph.E164] && len(seenPhone) < 64 {
				seenPhone[ph.E164] = true
				out.Phones = append(out.Phones, ph)
			}
		}
		if p.Similarity > out.Similarity {
			out.Similarity, out.SimilarTo = p.Similarity, p.SimilarTo
		}
	}
	out.Title = strings.TrimSuffix(titles.String(), " | ")
	out.Text = text.String()
	return out
}

// maxSiteText bounds the text of a merged site.
const maxSiteText = 1 << 20

func finishSite(res SiteResult) SiteResult {
	sort.Strings(res.Indicators)
	res.Indicators = dedupe(res.Indicators)
	return res
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// wordIndex is a page's text as a sequence of words (runs of a-z and 0-9; everything else
// separates), with the positions of each word. Phrases match as word sequences, so "toll-free"
// and "toll free" are the same phrase and "hp" never matches inside "php". One pass over the
// text replaces a scan per phrase.
type wordIndex struct {
	words []string
	pos   map[string][]int32
}

func newWordIndex(text string) *wordIndex {
	w := &wordIndex{pos: map[string][]int32{}}
	start := -1
	for i := 0; i <= len(text); i++ {
		if i < len(text) && isWordByte(text[i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			word := text[start:i]
			w.pos[word] = append(w.pos[word], int32(len(w.words)))
			w.words = append(w.words, word)
			start = -1
		}
	}
	return w
}

// count is how often a single word occurs.
func (w *wordIndex) count(word string) int { return len(w.pos[word]) }

// has reports whether phrase (split into words the same way) occurs; each word may also
// appear with a plural s ("driver downloads" has "driver download").
func (w *wordIndex) has(phrase string) bool {
	parts := newWordIndex(phrase).words
	if len(parts) == 0 {
		return false
	}
	same := func(got, want string) bool {
		return got == want || (len(got) == len(want)+1 && got[len(want)] == 's' && got[:len(want)] == want)
	}
	for _, first := range []string{parts[0], parts[0] + "s"} {
		for _, at := range w.pos[first] {
			i := int(at)
			if i+len(parts) > len(w.words) {
				continue
			}
			ok := true
			for j := 1; j < len(parts); j++ {
				if !same(w.words[i+j], parts[j]) {
					ok = false
					break
				}
			}
			if ok {
				return true
			}
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
}

// WithSite adds a site check's reasons to a result (the first score or the one revised by
// enrichment) and recomputes score and verdict. Clone and helpline pages add their reasons; a
// phone number already seen on other flagged sites adds the known-phone points at once.
func (rs *RuleSet) WithSite(r Result, s SiteResult, knownPhoneSites int) Result {
	out := r
	out.Reasons = append([]Reason(nil), r.Reasons...)
	out.RulesVersion = rs.Version
	if s.Verdict.Flagged() {
		out.Reasons = append(out.Reasons, Reason{Rule: "site:" + string(s.Verdict), Points: s.Score / 2,
			Detail: fmt.Sprintf("the site is a %s (content score %d)", s.Verdict, s.Score)})
	}
	if knownPhoneSites > 0 {
		out.Reasons = append(out.Reasons, Reason{Rule: "site:known-phone", Points: rs.Source.Site.Points["known-phone"],
			Detail: fmt.Sprintf("its phone number or chat account is on %d other flagged site(s)", knownPhoneSites)})
	}
	rs.settle(&out)
	return out
}
