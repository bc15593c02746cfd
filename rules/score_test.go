package rules

import (
	"strings"
	"testing"
)

func defaultRules(t testing.TB) *RuleSet {
	t.Helper()
	rs, err := Default()
	if err != nil {
		t.Fatalf("default rules: %v", err)
	}
	return rs
}

// hasRule reports whether r has a reason from rule (prefix match for "keyword:").
func hasRule(r Result, rule string) bool {
	for _, re := range r.Reasons {
		if re.Rule == rule || strings.HasSuffix(rule, ":") && strings.HasPrefix(re.Rule, rule) {
			return true
		}
	}
	return false
}

func TestScoreTable(t *testing.T) {
	rs := defaultRules(t)
	sc := rs.NewScorer()
	tests := []struct {
		name    string
		verdict Verdict
		brand   string
		rule    string // a rule that must have fired ("" for none required)
	}{
		// Helpline and setup scams: brand token + vocabulary.
		{"hpprintersupportnumbers.com", VerdictAlert, "HP", RuleBrandToken},
		{"123-hp-setup.net", VerdictAlert, "HP", "keyword:"},
		{"123hpsetup.com", VerdictAlert, "HP", RuleBrandToken},
		{"ijstartcanon.store", VerdictAlert, "Canon", RuleAbusedTLD},
		{"epson-printer-offline.com", VerdictAlert, "Epson", RulePrinterWord},
		{"lexmarkprintersupportnumber.com", VerdictAlert, "Lexmark", RuleBrandToken},
		{"printer-drivers.online", VerdictAlert, "", RulePrinterWord},
		{"*.hp-support.com", VerdictAlert, "HP", RuleBrandToken},
		{"HP-Support.COM.", VerdictAlert, "HP", RuleBrandToken},
		{"hp-printer-support-help-desk.com", VerdictAlert, "HP", RuleManyHyphens},
		{"hpsupport18005551234.com", VerdictAlert, "HP", RuleManyDigits},
		{"hpsupport18005551234.com", VerdictAlert, "HP", "pattern:"},
		// A longer word never hides the printer word: the brand's letter shared with it, the
		// brand's "s" ("sprinter" is a word); model numbers and two brands glued together.
		{"hprintersupport.com", VerdictAlert, "HP", RulePrinterWord},
		{"brothersprinterhelp.com", VerdictAlert, "Brother", RulePrinterWord},
		{"canonsprinters.com", VerdictAlert, "Canon", RulePrinterWord},
		{"sprintersupport.com", VerdictIgnore, "", ""},
		{"printerasistance.com", VerdictAlert, "", "keyword:helpline"}, // not print + eras + i + stance
		{"printercustmercare.com", VerdictAlert, "", "keyword:helpline"},
		{"printerr-help.com", VerdictAlert, "", RulePrinterWord}, // not print + err
		{"printerhlp.com", VerdictAlert, "", "keyword:helpline"},
		{"hp3755support.com", VerdictAlert, "HP", RuleBrandToken},
		{"officejet8600help.com", VerdictAlert, "HP", "keyword:"},
		{"canonmx490setup.com", VerdictAlert, "Canon", "keyword:"},
		{"hpcanonprinterhelp.com", VerdictAlert, "HP", RulePrinterWord},
		{"hpcanonepson.com", VerdictAlert, "HP", RuleBrandList},
		{"canonmx922.com", VerdictWatch, "Canon", RuleModelNumber},
		{"hp3755.com", VerdictWatch, "HP", RuleModelNumber},
		{"dell7490.com", VerdictIgnore, "", ""},     // a laptop: Dell counts only next to printer words
		{"hanoki512.com", VerdictIgnore, "OKI", ""}, // a short brand inside a word owns no number
		// Shops and dealers: a trade word without helpline, setup or problem words.
		{"canonprinterparts.com", VerdictWatch, "Canon", RuleTradeWord},
		{"hptonerstore.com", VerdictIgnore, "HP", RuleTradeWord},
		{"hpprintersupportstore.com", VerdictAlert, "HP", "keyword:helpline"},
		{"lexmartk.com", VerdictWatch, "Lexmark", RuleBrandTypo}, // "mart" is the typo's, not a shop's
		// Brands whose printers are still in homes, and helpline words of the scams.
		{"sonyprintersupport.com", VerdictAlert, "Sony", RuleBrandToken},
		{"savinprinterhelp.com", VerdictAlert, "Savin", RuleBrandToken},
		{"sonymusic.com", VerdictIgnore, "", ""},
		{"printertechs.com", VerdictAlert, "", "keyword:helpline"},
		{"printernotresponding.com", VerdictAlert, "", "keyword:problem"},
		// Typos, homoglyphs, hyphenation and splits.
		{"lexmrak.com", VerdictWatch, "Lexmark", RuleBrandTypo},
		{"epsonn.com", VerdictWatch, "Epson", RuleBrandTypo},
		{"xerxo.com", VerdictWatch, "Xerox", RuleBrandTypo},
		{"cann0n.com", VerdictWatch, "Canon", RuleBrandHomoglyph},
		{"1exmark.com", VerdictWatch, "Lexmark", RuleBrandHomoglyph},
		{"xn--p-support-p3i.com", VerdictAlert, "HP", RuleBrandHomoglyph}, // һp-support.com, Cyrillic һ
		{"һp-support.com", VerdictAlert, "HP", RuleBrandHomoglyph},
		{"ca-non.com", VerdictWatch, "Canon", RuleBrandTypo},
		{"ca.non.com", VerdictWatch, "Canon", RuleBrandTypo},
		{"hpstup.com", VerdictAlert, "HP", "keyword:"},
		{"canonprintersuport.com", VerdictAlert, "Canon", "keyword:"},
		// Brand as a whole name elsewhere, and embedded brand domains.
		{"canon.net", VerdictAlert, "Canon", RuleBrandLabel},
		{"brother.xyz", VerdictAlert, "Brother", RuleBrandLabel},
		{"canon.co", VerdictAlert, "Canon", RuleBrandLabel}, // a country code sold as a generic name
		// Under a country's suffix: often the brand's own site, a watch the registration decides;
		// under a government's: a restricted registry.
		{"epson.co.za", VerdictWatch, "Epson", RuleBrandLabelCountry},
		{"brother.ie", VerdictWatch, "Brother", RuleBrandLabelCountry},
		{"hp.gov.in", VerdictIgnore, "HP", RuleBrandLabelInstitution},
		{"hponline.nic.in", VerdictWatch, "HP", RuleRestrictedRegistry}, // a state's portal, not a look-alike
		{"hp-printer-support.gov.in", VerdictWatch, "HP", RuleRestrictedRegistry},
		{"support-hp.com.setup-fix.net", VerdictAlert, "HP", RuleBrandEmbedded},
		{"hp.com-support.help", VerdictAlert, "HP", RuleBrandEmbedded},
		{"wwwhpcom.com", VerdictAlert, "HP", RuleBrandEmbedded},
		// Free hosting: the user's label is the name.
		{"hp-support-we.pages.dev", VerdictAlert, "HP", RuleFreeHosting},
		{"123hpcomenvy5055.blogspot.com", VerdictAlert, "HP", RuleProductLine},
		{"driverprinterdownloads.wordpress.com", VerdictAlert, "", RuleFreeHosting},
		// Big brands only count next to printer words.
		{"samsungcloud.com", VerdictIgnore, "", ""},
		{"samsung-printer-support.com", VerdictAlert, "Samsung", RuleBrandToken},
		// Brand-owned names never alert.
		{"hp.com", VerdictIgnore, "HP", RuleBrandOwned},
		{"support.hp.com", VerdictIgnore, "HP", RuleBrandOwned},
		{"123.hp.com", VerdictIgnore, "HP", RuleBrandOwned},
		{"hpsmart.com", VerdictIgnore, "HP", RuleBrandOwned},
		{"ij.start.canon", VerdictIgnore, "Canon", RuleBrandOwned},
		{"epsonconnect.com", VerdictIgnore, "Epson", RuleBrandOwned},
		// Hard negatives: brand letters inside other words.
		{"php.net", VerdictIgnore, "", ""},
		{"whp.com", VerdictIgnore, "", ""},
		{"chpk.com", VerdictIgnore, "", ""},
		{"americanonline.com", VerdictIgnore, "", ""},
		{"tollbrothers.com", VerdictIgnore, "", ""},
		{"brooksbrothers.com", VerdictIgnore, "", ""},
		{"canonical.com", VerdictIgnore, "", ""},
		{"hardened-php.net", VerdictIgnore, "", ""},
		{"thinkphp.cn", VerdictIgnore, "", ""},
		{"team-bhp.com", VerdictIgnore, "", ""},
		{"hpcl.co.in", VerdictIgnore, "", ""},
		{"cookiebot.com", VerdictIgnore, "", ""},
		{"bother.com", VerdictIgnore, "", ""},
		{"cannon.com", VerdictIgnore, "", ""},
		{"sharp-stream.com", VerdictIgnore, "Sharp", RuleBrandToken},
		{"printerval.com", VerdictIgnore, "", RulePrinterWord},
		{"canoncitydailyrecord.com", VerdictIgnore, "Canon", RuleBrandToken},
		// Internal host names in someone else's domain are weak evidence.
		{"hp-printer.office.example.com", VerdictIgnore, "HP", RuleBrandToken},
		// Invalid names.
		{"a..b.com", VerdictInvalid, "", ""},
		{"xn--zz.com", VerdictInvalid, "", ""},
		{"bad name.com", VerdictInvalid, "", ""},
		{strings.Repeat("a", 64) + ".com", VerdictInvalid, "", ""},
		{strings.Repeat("abcdefghi.", 26) + "com", VerdictInvalid, "", ""},
		{"", VerdictInvalid, "", ""},
	}
	for _, tc := range tests {
		r := sc.Score(tc.name)
		if r.Verdict != tc.verdict || r.Brand != tc.brand || tc.rule != "" && !hasRule(r, tc.rule) {
			t.Errorf("%q: got %s %d brand %q reasons %+v error %q; want %s brand %q with rule %q",
				tc.name, r.Verdict, r.Score, r.Brand, r.Reasons, r.Error, tc.verdict, tc.brand, tc.rule)
		}
		if r.Verdict == VerdictInvalid && r.Error == "" {
			t.Errorf("%q: invalid without an error", tc.name)
		}
	}
}

// Every point is explained: the score is the sum of the reasons (capped at 100), and every
// reason that gives points names its rule and says why.
func TestReasonsAddUp(t *testing.T) {
	rs := defaultRules(t)
	sc := rs.NewScorer()
	for _, name := range realisticMix(3000) {
		r := sc.Score(name)
		sum := 0
		for _, re := range r.Reasons {
			sum += re.Points
			if re.Rule == "" || re.Detail == "" {
				t.Fatalf("%s: reason without rule or detail: %+v", name, re)
			}
		}
		if sum > 100 {
			sum = 100
		}
		if sum != r.Score {
			t.Fatalf("%s: score %d but reasons add up to %d: %+v", name, r.Score, sum, r.Reasons)
		}
		if want := verdictFor(rs, r.Score); r.Verdict != VerdictInvalid && r.Verdict != want {
			t.Fatalf("%s: score %d verdict %s, want %s", name, r.Score, r.Verdict, want)
		}
	}
}

func verdictFor(rs *RuleSet, score int) Verdict {
	switch {
	case score >= rs.Alert:
		return VerdictAlert
	case score >= rs.Watch:
		return VerdictWatch
	}
	return VerdictIgnore
}

// Scoring one name must not depend on what was scored before with the same Scorer.
func TestScorerReuseIsStateless(t *testing.T) {
	rs := defaultRules(t)
	reused := rs.NewScorer()
	for _, name := range realisticMix(2000) {
		a := reused.Score(name)
		b := rs.NewScorer().Score(name)
		if a.Score != b.Score || a.Verdict != b.Verdict || a.Brand != b.Brand || len(a.Reasons) != len(b.Reasons) {
			t.Fatalf("%s: reused scorer %+v, fresh scorer %+v", name, a, b)
		}
	}
}

func TestTypoKinds(t *testing.T) {
	tests := []struct{ cand, brand, kind string }{
		{"lexmrak", "lexmark", "transposition"},
		{"epsonn", "epson", "repetition"},
		{"canonx", "canon", "addition"},
		{"cnaon", "canon", "transposition"},
		{"epsn", "epson", "omission"},
		{"canpn", "canon", "replacement"},
		{"canin", "canon", "vowel-swap"},
		{"canan", "canon", "vowel-swap"},
		{"cxnox", "canon", "edits"},
		{"canoo", "canon", "bitsquat"},
	}
	for _, tc := range tests {
		if got := typoKind(tc.cand, tc.brand); got != tc.kind {
			t.Errorf("typoKind(%q, %q) = %q, want %q", tc.cand, tc.brand, got, tc.kind)
		}
	}
}
