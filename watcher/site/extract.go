// Package site checks what a suspect site shows: it fetches the page safely (fetch.go),
// extracts its text, links, forms and phone numbers (extract.go, phones.go), and lets the rules
// score those facts (rules.ScoreSite).
package site

import (
	"bytes"
	"net/url"
	"strings"

	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"

	"github.com/helpwatch/helpwatch/rules"
)

// MaxText bounds the visible text kept from one page.
const MaxText = 256 << 10

// Page is what extraction found on one page.
type Page struct {
	Title       string   `json:"title,omitempty"`
	Text        string   `json:"-"`
	Meta        []string `json:"-"`
	LinkHosts   []string `json:"link_hosts,omitempty"`
	ScriptHosts []string `json:"script_hosts,omitempty"`
	FormActions []string `json:"form_actions,omitempty"`
	FormFields  []string `json:"form_fields,omitempty"`
	TelLinks    []string `json:"-"`
}

// IsHTML guesses whether a body is HTML from its content type or first bytes.
func IsHTML(contentType string, body []byte) bool {
	ct := strings.ToLower(contentType)
	if strings.Contains(ct, "html") {
		return true
	}
	if ct != "" && !strings.HasPrefix(ct, "text/plain") && !strings.Contains(ct, "octet-stream") {
		return false
	}
	head := bytes.ToLower(bytes.TrimSpace(body[:min(len(body), 512)]))
	return bytes.HasPrefix(head, []byte("<!doctype html")) || bytes.HasPrefix(head, []byte("<html")) || bytes.Contains(head, []byte("<head"))
}

// ExtractHTML reads an HTML page: title, visible text (scripts, styles and templates left out),
// meta contents, hosts of links, scripts and frames, forms, and tel: links.
func ExtractHTML(body []byte, base *url.URL) *Page {
	p := &Page{}
	doc, err := goquery.NewDocumentFromReader(bytes.NewReader(body))
	if err != nil {
		p.Text = bounded(string(body))
		return p
	}
	p.Title = strings.TrimSpace(doc.Find("title").First().Text())
	doc.Find("meta[content]").Each(func(_ int, s *goquery.Selection) {
		if c, ok := s.Attr("content"); ok && len(p.Meta) < 64 {
			p.Meta = append(p.Meta, c)
		}
	})
	hosts := map[string]map[string]bool{"link": {}, "script": {}, "form": {}}
	addHost := func(kind, ref string) {
		u, err := url.Parse(strings.TrimSpace(ref))
		if err != nil {
			return
		}
		if base != nil {
			u = base.ResolveReference(u)
		}
		if u.Scheme == "tel" || strings.HasPrefix(strings.ToLower(ref), "tel:") {
			if len(p.TelLinks) < 64 {
				p.TelLinks = append(p.TelLinks, strings.TrimPrefix(strings.TrimPrefix(ref, "tel:"), "TEL:"))
			}
			return
		}
		if h := strings.ToLower(u.Hostname()); h != "" && len(hosts[kind]) < 256 {
			hosts[kind][h] = true
		}
	}
	doc.Find("a[href], link[href], area[href]").Each(func(_ int, s *goquery.Selection) { addHost("link", s.AttrOr("href", "")) })
	doc.Find("script[src], iframe[src], img[src]").Each(func(_ int, s *goquery.Selection) { addHost("script", s.AttrOr("src", "")) })
	doc.Find("form").Each(func(_ int, s *goquery.Selection) {
		if a, ok := s.Attr("action"); ok {
			p.FormActions = append(p.FormActions, a)
			addHost("form", a)
		}
	})
	doc.Find("input, textarea, select").Each(func(_ int, s *goquery.Selection) {
		for _, a := range []string{"name", "id", "placeholder", "type"} {
			if v := strings.TrimSpace(s.AttrOr(a, "")); v != "" && len(p.FormFields) < 128 {
				p.FormFields = append(p.FormFields, v)
			}
		}
	})
	p.LinkHosts, p.ScriptHosts = keys(hosts["link"]), keys(hosts["script"])
	for h := range hosts["form"] {
		p.LinkHosts = append(p.LinkHosts, h)
	}
	// Inline scripts still name chat widgets and remote tools; keep their text apart from the
	// visible text so that the hosts they load count, without their code reading as prose.
	var scripts strings.Builder
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		if scripts.Len() < MaxText/4 {
			scripts.WriteString(s.Text())
			scripts.WriteByte(' ')
		}
	})
	p.ScriptHosts = append(p.ScriptHosts, hostsIn(scripts.String())...)
	doc.Find("script, style, noscript, template").Remove()
	var text strings.Builder
	for _, n := range doc.Find("body").Nodes {
		visibleText(n, &text)
	}
	if text.Len() == 0 {
		for _, n := range doc.Nodes {
			visibleText(n, &text)
		}
	}
	p.Text = bounded(text.String())
	return p
}

func visibleText(n *html.Node, b *strings.Builder) {
	if b.Len() > MaxText {
		return
	}
	switch n.Type {
	case html.TextNode:
		b.WriteString(n.Data)
		b.WriteByte(' ')
	case html.ElementNode:
		// Attribute text people read: alt and title.
		for _, a := range n.Attr {
			if a.Key == "alt" || a.Key == "title" || a.Key == "placeholder" || a.Key == "aria-label" {
				b.WriteString(a.Val)
				b.WriteByte(' ')
			}
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		visibleText(c, b)
	}
}

// ExtractText reads a file that is not HTML (JSX, RST, PHP templates): its text as it is, the
// hosts it names, and tel: links.
func ExtractText(body []byte) *Page {
	s := bounded(string(body))
	p := &Page{Text: s, LinkHosts: hostsIn(s)}
	for _, m := range reTel.FindAllStringSubmatch(s, 64) {
		p.TelLinks = append(p.TelLinks, m[1])
	}
	return p
}

// Facts turns an extracted page into what the rules score.
func (p *Page) Facts(phones []rules.SitePhone) *rules.SiteFacts {
	return &rules.SiteFacts{Reachable: true, Title: p.Title, Text: p.Text + " " + strings.Join(p.Meta, " "),
		Hosts: append(append(append([]string(nil), p.LinkHosts...), p.ScriptHosts...), p.FormActions...), FormFields: p.FormFields, Phones: phones}
}

func bounded(s string) string {
	if len(s) > MaxText {
		return s[:MaxText]
	}
	return s
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sortStrings(out)
	return out
}
