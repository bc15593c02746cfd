package rules

import (
	"strings"
	"testing"
)

func explainOf(r Result) string {
	var parts []string
	for _, re := range r.Reasons {
		parts = append(parts, re.Rule+": "+re.Detail)
	}
	return strings.Join(parts, "; ")
}

// Letters outside ASCII next to a brand neither hide it nor make it a homoglyph.
func TestNonASCIINextToABrand(t *testing.T) {
	sc := defaultRules(t).NewScorer()
	r := sc.Score("epson-drucker-störung.de")
	if r.Brand != "Epson" || hasRule(r, RuleBrandHomoglyph) || !hasRule(r, RuleBrandToken) {
		t.Errorf("epson-drucker-störung.de: %s", explainOf(r))
	}
	ascii, uni := sc.Score("hpsmart-unicode.com"), sc.Score("hpsmart-ünicode.com")
	if uni.Verdict != ascii.Verdict || uni.Score != ascii.Score || uni.Brand != "HP" {
		t.Errorf("hpsmart-ünicode.com scores %d %s, the ASCII spelling %d %s", uni.Score, uni.Verdict, ascii.Score, ascii.Verdict)
	}
	for _, name := range []string{"hp打印机-support.com", "hpсупорт-printer.com", "canon-打印机-help.com"} {
		if r := sc.Score(name); r.Brand == "" || hasRule(r, RuleBrandHomoglyph) {
			t.Errorf("%s: %s", name, explainOf(r))
		}
	}
	// A real look-alike is still one: Cyrillic е in epson, and an accented word that hides a
	// brand ("epṡom").
	for _, name := range []string{"еpson-support.com", "xn--epom-1h5a.com"} {
		if r := sc.Score(name); !hasRule(r, RuleBrandHomoglyph) {
			t.Errorf("%s: %s", name, explainOf(r))
		}
	}
}

// Brandless names: the word printer with one helpline, setup or problem word alerts; weaker
// printer context (printing words, a misspelled printer) watches with one and alerts with two.
func TestBrandlessPrinterHelplineNames(t *testing.T) {
	sc := defaultRules(t).NewScorer()
	for name, want := range map[string]Verdict{
		"printer-offline-fix.com":        VerdictAlert,
		"printernotprinting.com":         VerdictAlert,
		"wireless-printer-setup-help.co": VerdictAlert,
		"printing-help.com":              VerdictWatch,
		"toner-support.net":              VerdictWatch,
		"printing-problem-help.com":      VerdictAlert,
		"ink-cartridge-error-support.io": VerdictAlert,
		"printr-support.com":             VerdictWatch,
		"prnter-offline-help.com":        VerdictAlert,
		"printing.com":                   VerdictIgnore,
		"blueprint-gallery.com":          VerdictIgnore,
		"offline-support-help.com":       VerdictIgnore, // no printer at all
	} {
		if r := sc.Score(name); r.Verdict != want {
			t.Errorf("%s: %s %d, want %s (%s)", name, r.Verdict, r.Score, want, explainOf(r))
		}
	}
	r := sc.Score("printr-support.com")
	if !hasRule(r, RulePrinterTypo) || !strings.Contains(explainOf(r), `"printr" reads as "printer"`) {
		t.Errorf("the misspelled printer word is not explained: %s", explainOf(r))
	}
}

// Product lines and setup hosts, spelled right or with one typo, name the brand.
func TestProductsAndSetupHostsWithoutTheBrand(t *testing.T) {
	sc := defaultRules(t).NewScorer()
	for name, brand := range map[string]string{
		"ijstart-setup.com":        "Canon",
		"offcejet-pro-setup.com":   "HP",
		"ecotnak-printer-help.com": "Epson",
		"laserjte-support.com":     "HP",
		"labelwriter-support.com":  "DYMO",
	} {
		r := sc.Score(name)
		if r.Brand != brand || r.Verdict != VerdictAlert {
			t.Errorf("%s: %s %d brand %q, want an alert for %s (%s)", name, r.Verdict, r.Score, r.Brand, brand, explainOf(r))
		}
	}
	if r := sc.Score("offcejet-pro-setup.com"); !hasRule(r, RuleProductTypo) {
		t.Errorf("product typo not explained: %s", explainOf(r))
	}
}

// Every brand of the catalog is found by its tokens next to printer support words, and none of
// its own domains is flagged: a brand added to the file is found without a line of code.
func TestEveryCatalogBrand(t *testing.T) {
	rs := defaultRules(t)
	sc := rs.NewScorer()
	for _, b := range rs.Source.Brands {
		for _, tok := range b.Tokens {
			name := tok + "-printer-support.com"
			if r := sc.Score(name); r.Brand != b.Name || r.Verdict != VerdictAlert {
				t.Errorf("%s: %s %d brand %q, want an alert for %s (%s)", name, r.Verdict, r.Score, r.Brand, b.Name, explainOf(r))
			}
		}
		for _, d := range b.Owned {
			for _, name := range []string{d, "support." + d} {
				if r := sc.Score(name); r.Verdict == VerdictAlert || r.Verdict == VerdictWatch {
					t.Errorf("%s is %s's own and was flagged: %s", name, b.Name, explainOf(r))
				}
			}
		}
	}
}

// A brand whose misspellings do not count is still found behind look-alike characters.
func TestNoTyposBrands(t *testing.T) {
	sc := defaultRules(t).NewScorer()
	if r := sc.Score("k0dak-support.com"); r.Brand != "Kodak" || !hasRule(r, RuleBrandHomoglyph) {
		t.Errorf("k0dak-support.com: %s", explainOf(r))
	}
	for _, name := range []string{"kotak-support.com", "kodik.info", "rolla-support.com"} {
		if r := sc.Score(name); r.Brand == "Kodak" || r.Brand == "Rollo" {
			t.Errorf("%s read as a misspelled %s: %s", name, r.Brand, explainOf(r))
		}
	}
}
