package site

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzAnalyze: hostile pages never panic, and what comes out respects the bounds.
func FuzzAnalyze(f *testing.F) {
	for _, seed := range []string{
		`<html><head><title>HP</title></head><body><a href="tel:+18882157421">call</a></body></html>`,
		`<script>tawk.to/000000000000000000000000</script><img src="hp-logo.png">`,
		"<html><body>" + strings.Repeat("<div>", 500) + "deep",
		`export default () => <a href="tel:1-800-555-0199">x</a>`,
		"\xff\xfe<title>\x00</title>",
	} {
		f.Add([]byte(seed), true)
	}
	rs := ruleSet(f)
	f.Fuzz(func(t *testing.T, body []byte, isHTML bool) {
		rep := Analyze(rs, nil, "fuzz.example", body, isHTML, nil)
		if rep.Score < 0 || rep.Score > 100 || len(rep.Page.Text) > MaxText || len(rep.Phones) > 32 {
			t.Fatalf("out of bounds: score %d, text %d, phones %d", rep.Score, len(rep.Page.Text), len(rep.Phones))
		}
		for _, p := range rep.Phones {
			if !strings.HasPrefix(p.E164, "+") || !utf8.ValidString(p.E164) {
				t.Fatalf("bad phone %q", p.E164)
			}
		}
	})
}
