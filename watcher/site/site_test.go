package site

import (
	"bytes"
	"github.com/helpwatch/helpwatch/watcher/testkit"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/helpwatch/helpwatch/rules"
)

var ruleSet = testkit.DefaultRules

func analyzeFixture(t *testing.T, name, domain string) *Report {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "site", name))
	if err != nil {
		t.Fatal(err)
	}
	return Analyze(ruleSet(t), nil, domain, body, strings.HasSuffix(name, ".html"), nil)
}

func TestSiteVerdicts(t *testing.T) {
	for _, tc := range []struct {
		file, domain string
		verdict      rules.SiteVerdict
		brand        string
	}{
		{"clone.html", "hp-printer-setup-help.com", rules.SiteClone, "HP"},
		{"fake-error.jsx", "hp-install-error.net", rules.SiteClone, "HP"},
		{"helpline.html", "canon-printer-support-247.com", rules.SiteHelpline, "Canon"},
		{"parked.html", "epson-help-center.com", rules.SiteParked, ""},
		{"benign.html", "rosas-bakery.example", rules.SiteBenign, ""},
		// The brand's own page is never a clone of itself.
		{"clone.html", "123.hp.com", rules.SiteBenign, ""},
	} {
		rep := analyzeFixture(t, tc.file, tc.domain)
		if rep.Verdict != tc.verdict || (tc.brand != "" && rep.Brand != tc.brand) {
			t.Errorf("%s as %s: %s %d %s %v", tc.file, tc.domain, rep.Verdict, rep.Score, rep.Brand, rep.Reasons)
		}
	}
	clone := analyzeFixture(t, "clone.html", "hp-printer-setup-help.com")
	if len(clone.Phones) != 1 || clone.Phones[0].E164 != "+18882157421" || !clone.Phones[0].TollFree || clone.Phones[0].Source != "tel" {
		t.Errorf("phones %+v", clone.Phones)
	}
	for _, want := range []string{"tawk.to", "installation failed", "123.hp.com"} {
		if !strings.Contains(strings.Join(clone.Indicate, ","), want) {
			t.Errorf("indicators lack %q: %v", want, clone.Indicate)
		}
	}
	if clone.Page.Title != "123.hp.com - Printer setup from HP" || !strings.Contains(strings.Join(clone.Page.FormFields, " "), "model_number") {
		t.Errorf("page %+v", clone.Page)
	}
	sum := 0
	for _, r := range clone.Reasons {
		sum += r.Points
	}
	if min(sum, 100) != clone.Score {
		t.Errorf("reasons sum to %d, score %d", sum, clone.Score)
	}
}

func TestPhones(t *testing.T) {
	got := Phones([]string{"+1-888-215-7421", "not a number"},
		"Call 1 (855) 740-2391 or +44 20 7946 0958, not 123-456, order #12345678901234567 or 2024-2025")
	var nums []string
	for _, p := range got {
		nums = append(nums, p.E164)
	}
	if strings.Join(nums, " ") != "+18882157421 +18557402391 +442079460958" {
		t.Errorf("phones %v", got)
	}
	if !got[0].TollFree || got[2].TollFree {
		t.Errorf("toll-free flags %+v", got)
	}
}

func TestExtractHTMLHostsAndText(t *testing.T) {
	base, _ := url.Parse("https://scam.example/setup/")
	p := ExtractHTML([]byte(`<html><head><title> T </title><script>var s="https://code.jivosite.com/x.js";</script>
		<style>.x{}</style></head><body>Visible <b>text</b><img alt="HP logo" src="/logo.png">
		<a href="https://support.hp.com/">real</a><a href="tel:+18005550199">call</a><iframe src="//chat.example.net/w"></iframe>
		<template>hidden</template></body></html>`), base)
	if p.Title != "T" || !strings.Contains(p.Text, "Visible") || !strings.Contains(p.Text, "HP logo") || strings.Contains(p.Text, "hidden") || strings.Contains(p.Text, ".x{}") {
		t.Errorf("text %q title %q", p.Text, p.Title)
	}
	hosts := strings.Join(append(p.LinkHosts, p.ScriptHosts...), " ")
	for _, h := range []string{"support.hp.com", "scam.example", "chat.example.net", "code.jivosite.com"} {
		if !strings.Contains(hosts, h) {
			t.Errorf("hosts lack %s: %s", h, hosts)
		}
	}
	if len(p.TelLinks) != 1 {
		t.Errorf("tel links %v", p.TelLinks)
	}
}

// BenchmarkAnalyze100KB extracts and scores a 100 KB page (the clone fixture padded with
// ordinary content).
func BenchmarkAnalyze100KB(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "site", "clone.html"))
	if err != nil {
		b.Fatal(err)
	}
	pad := bytes.Repeat([]byte(`<div class="card"><p>Our printers deliver sharp documents at home and in the office. <a href="/products/item">Read more</a></p></div>`+"\n"), 800)
	page := bytes.Replace(body, []byte("<footer>"), append(pad, []byte("<footer>")...), 1)
	page = page[:min(len(page), 100<<10)]
	rs := ruleSet(b)
	b.SetBytes(int64(len(page)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Analyze(rs, nil, "hp-printer-setup-help.com", page, true, nil)
	}
}

func TestChatAccountsAndBrandImages(t *testing.T) {
	got := ChatAccounts(`s1.src='https://embed.tawk.to/65be18d78d261e1b5f5bf30e/1hlm4'; <script src="//code.jivosite.com/widget/AbCdEf123"></script>
		window.__lc.license = 12345678; CRISP_WEBSITE_ID="0f8d3b2a-1111-2222-3333-444455556666"`)
	want := "crisp/0f8d3b2a-1111-2222-3333-444455556666 jivochat/AbCdEf123 livechat/12345678 tawk.to/65be18d78d261e1b5f5bf30e"
	if strings.Join(got, " ") != want {
		t.Errorf("chat accounts %v", got)
	}
	// A logo named after the brand on a page about printers is brand evidence.
	page := []byte(`<html><body><img src="/assets/hp-logo.png?v=2"><p>Printer setup: downloading driver, connecting to server.</p></body></html>`)
	rep := Analyze(ruleSet(t), nil, "printer-setup-now.com", page, true, nil)
	if !strings.Contains(strings.Join(rep.Indicate, ","), "brand image hplogo") && !strings.Contains(strings.Join(rep.Indicate, ","), "brand image hp") {
		t.Errorf("logo not read as brand evidence: %v %v", rep.Indicate, rep.Page.Images)
	}
}
