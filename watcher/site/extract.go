// Package site checks what a suspect site shows: it fetches the page safely (fetch.go),
// extracts its text, links, forms and phone numbers (extract.go, phones.go), and lets the rules
// score those facts (rules.ScoreSite).
package site

import (
	"bytes"
	"net/url"
	"path"
	"strings"

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
	// Markup is the page's normalized markup, for fingerprints (see NormalizeHTML).
	Markup []byte `json:"-"`
	// Chats are the live-chat widget accounts the page loads ("tawk.to/5f...").
	Chats []string `json:"chat_accounts,omitempty"`
	// Images are the file names of the page's images (brand logos are named after the brand).
	Images []string `json:"-"`
	// Links are the page's links with their text (bounded), for the pages of the same site a
	// site check reads next.
	Links []Link `json:"-"`
}

// Link is one link of a page.
type Link struct {
	URL  string
	Text string
}

// maxLinks bounds the links kept per page.
const maxLinks = 256

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

// ExtractHTML reads an HTML page in one walk over its tree: title, visible text (scripts,
// styles and templates left out; alt, title and placeholder text kept), meta contents, hosts
// of links, scripts, frames and images, forms and their fields, tel: links, and the normalized
// markup fingerprints are made from.
func ExtractHTML(body []byte, base *url.URL) *Page {
	p := &Page{}
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		return ExtractText(body)
	}
	w := &walker{p: p, base: base, hosts: map[string]map[string]bool{"link": {}, "script": {}}}
	w.walk(doc, false)
	p.Title = strings.TrimSpace(p.Title)
	p.Text = bounded(w.text.String())
	p.Markup = w.markup.Bytes()
	p.LinkHosts, p.ScriptHosts = keys(w.hosts["link"]), keys(w.hosts["script"])
	// Inline scripts name chat widgets and remote tools: the hosts they load count, their code
	// does not read as prose.
	p.ScriptHosts = append(p.ScriptHosts, hostsIn(w.scripts.String())...)
	p.Chats = ChatAccounts(w.scripts.String() + " " + strings.Join(w.srcs, " "))
	return p
}

type walker struct {
	p                     *Page
	base                  *url.URL
	hosts                 map[string]map[string]bool
	text, scripts, markup bytes.Buffer
	titleDone             bool
	srcs                  []string
}

func (w *walker) host(kind, ref string) {
	ref = strings.TrimSpace(ref)
	if len(ref) > 4 && strings.EqualFold(ref[:4], "tel:") {
		if len(w.p.TelLinks) < 64 {
			w.p.TelLinks = append(w.p.TelLinks, ref[4:])
		}
		return
	}
	u, err := url.Parse(ref)
	if err != nil {
		return
	}
	if w.base != nil {
		u = w.base.ResolveReference(u)
	}
	if h := strings.ToLower(u.Hostname()); h != "" && len(w.hosts[kind]) < 256 {
		w.hosts[kind][h] = true
	}
}

// link keeps an anchor's target (resolved against the page) and its text.
func (w *walker) link(ref string, n *html.Node) {
	if len(w.p.Links) >= maxLinks {
		return
	}
	u, err := url.Parse(strings.TrimSpace(ref))
	if err != nil {
		return
	}
	if w.base != nil {
		u = w.base.ResolveReference(u)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return
	}
	u.Fragment = ""
	var text strings.Builder
	var collect func(*html.Node)
	collect = func(c *html.Node) {
		for ; c != nil && text.Len() < 200; c = c.NextSibling {
			if c.Type == html.TextNode {
				text.WriteString(c.Data)
				text.WriteByte(' ')
			}
			collect(c.FirstChild)
		}
	}
	collect(n.FirstChild)
	label := strings.Join(strings.Fields(text.String()), " ")
	if t, ok := attr(n, "title"); ok && label == "" {
		label = t
	}
	w.p.Links = append(w.p.Links, Link{URL: u.String(), Text: label})
}

func attr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

// walk visits n; hidden is true inside script, style, noscript and template.
func (w *walker) walk(n *html.Node, hidden bool) {
	if w.markup.Len() < 1<<20 {
		switch n.Type {
		case html.TextNode:
			if t := strings.Join(strings.Fields(n.Data), " "); t != "" {
				w.markup.WriteString(t)
				w.markup.WriteByte(' ')
			}
		case html.ElementNode:
			w.markup.WriteByte('<')
			w.markup.WriteString(n.Data)
			for _, a := range n.Attr {
				w.markup.WriteByte(' ')
				w.markup.WriteString(a.Key)
				w.markup.WriteString(`=""`)
			}
			w.markup.WriteByte('>')
		}
	}
	switch n.Type {
	case html.TextNode:
		switch {
		case n.Parent != nil && n.Parent.Type == html.ElementNode && n.Parent.Data == "script":
			if w.scripts.Len() < MaxText/4 {
				w.scripts.WriteString(n.Data)
				w.scripts.WriteByte(' ')
			}
		case n.Parent != nil && n.Parent.Data == "title" && !w.titleDone:
			w.p.Title += n.Data
		case !hidden && w.text.Len() < MaxText:
			w.text.WriteString(n.Data)
			w.text.WriteByte(' ')
		}
	case html.ElementNode:
		switch n.Data {
		case "script", "style", "noscript", "template":
			hidden = true
		}
		switch n.Data {
		case "a", "link", "area":
			if v, ok := attr(n, "href"); ok {
				w.host("link", v)
				if n.Data == "a" {
					w.link(v, n)
				}
			}
		case "script", "iframe", "img", "frame", "embed":
			if v, ok := attr(n, "src"); ok {
				w.host("script", v)
				if len(w.srcs) < 256 {
					w.srcs = append(w.srcs, v)
				}
				if n.Data == "img" && len(w.p.Images) < 64 {
					w.p.Images = append(w.p.Images, path.Base(strings.SplitN(v, "?", 2)[0]))
				}
			}
		case "meta":
			if v, ok := attr(n, "content"); ok && len(w.p.Meta) < 64 {
				w.p.Meta = append(w.p.Meta, v)
			}
		case "form":
			if v, ok := attr(n, "action"); ok {
				w.p.FormActions = append(w.p.FormActions, v)
				w.host("link", v)
			}
		case "input", "textarea", "select":
			for _, k := range []string{"name", "id", "placeholder", "type"} {
				if v, ok := attr(n, k); ok && strings.TrimSpace(v) != "" && len(w.p.FormFields) < 128 {
					w.p.FormFields = append(w.p.FormFields, strings.TrimSpace(v))
				}
			}
		}
		if !hidden && w.text.Len() < MaxText {
			for _, a := range n.Attr {
				if a.Key == "alt" || a.Key == "title" || a.Key == "placeholder" || a.Key == "aria-label" {
					w.text.WriteString(a.Val)
					w.text.WriteByte(' ')
				}
			}
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c, hidden)
	}
	if n.Type == html.ElementNode {
		if n.Data == "title" {
			w.titleDone = true
		}
		if n.FirstChild != nil && w.markup.Len() < 1<<20 {
			w.markup.WriteString("</")
			w.markup.WriteString(n.Data)
			w.markup.WriteByte('>')
		}
	}
}

// ExtractText reads a file that is not HTML (JSX, RST, PHP templates): its text as it is, the
// hosts it names, and tel: links.
func ExtractText(body []byte) *Page {
	s := bounded(string(body))
	p := &Page{Text: s, LinkHosts: hostsIn(s), Markup: bytes.Join(bytes.Fields(body[:min(len(body), 1<<20)]), []byte(" ")), Chats: ChatAccounts(s)}
	for _, m := range reTel.FindAllStringSubmatch(s, 64) {
		p.TelLinks = append(p.TelLinks, m[1])
	}
	return p
}

// Facts turns an extracted page into what the rules score.
func (p *Page) Facts(phones []rules.SitePhone) *rules.SiteFacts {
	return &rules.SiteFacts{Reachable: true, Title: p.Title, Text: p.Text + " " + strings.Join(p.Meta, " "), Images: p.Images,
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
