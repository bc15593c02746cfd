package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDefaultRulesLoad(t *testing.T) {
	rs := defaultRules(t)
	if rs.Version == "" || rs.Alert <= rs.Watch {
		t.Fatalf("default rules: version %q alert %d watch %d", rs.Version, rs.Alert, rs.Watch)
	}
	want := []string{"HP", "Canon", "Epson", "Brother", "Lexmark", "Xerox", "Ricoh", "Kyocera", "Konica Minolta", "Sharp", "OKI", "Pantum"}
	have := map[string]bool{}
	for _, b := range rs.Brands() {
		have[b] = true
	}
	for _, b := range want {
		if !have[b] {
			t.Errorf("catalog lacks brand %s", b)
		}
	}
}

// Rule-file errors name the file and the line, and every problem is reported at once.
func TestParseErrors(t *testing.T) {
	base := string(defaultRulesYAML)
	lineOfText := func(marker string) string {
		return fmt.Sprintf("rules.yaml:%d: ", strings.Count(base[:strings.Index(base, marker)], "\n")+1)
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", strings.Replace(base, "thresholds:", "colour: blue\nthresholds:", 1), lineOfText("thresholds:") + `unknown key "colour"`},
		{"bad points", strings.Replace(base, "brand-token:          {points: 30", "brand-token:          {points: 300", 1), lineOfText("  brand-token:") + `rule "brand-token": points must be between 0 and 100, got 300`},
		{"unknown rule", strings.Replace(base, "  brand-token:", "  brand-tokn:", 1), `unknown rule "brand-tokn"`},
		{"bad regex", strings.Replace(base, `regex: '(^|[^0-9])1?8`, `regex: '(^|[^0-9]1?8`, 1), "bad regular expression"},
		{"duplicate brand", strings.Replace(base, "  - name: Pantum", "  - name: Canon", 1), `duplicate brand "Canon"`},
		{"token twice", strings.Replace(base, "tokens: [pantum]", "tokens: [epson]", 1), `token "epson" already belongs to brand "Epson"`},
		{"keyword twice", strings.Replace(base, "verify, secure", "verify, support", 1), `keyword "support" is in group "helpline" and again in group "service"`},
		{"bad thresholds", strings.Replace(base, "watch: 35", "watch: 80", 1), "watch threshold 80 is above alert threshold 50"},
		{"bad needs", strings.Replace(base, "needs: brand", "needs: always", 1), `needs must be "printer" or "brand"`},
		{"not yaml", "brands: [", "rules.yaml"},
		{"empty", "", "empty rule file"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.yaml), "rules.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

// Three typos of three kinds (a top-level key, a rule name, a brand's key) and a value of the
// wrong type are all reported in one run, in file order, each with its line and the nearest
// valid name; nothing that follows from a typo ("thresholds missing") is reported as well.
func TestParseReportsEveryErrorWithSuggestions(t *testing.T) {
	base := string(defaultRulesYAML)
	y := strings.Replace(base, "thresholds:", "threshold:", 1)
	y = strings.Replace(y, "  brand-token:", "  brand-tokn:", 1)
	y = strings.Replace(y, "tokens: [pantum]", "tokenz: [pantum]", 1)
	y = strings.Replace(y, "    fake-flow: 35", "    fake-flwo: 35", 1)
	y = strings.Replace(y, "  brand-typo:           {points: ", "  brand-typo:           {points: many, x: ", 1)
	_, err := Parse([]byte(y), "rules.yaml")
	var errs LoadErrors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v is not a list", err)
	}
	want := []string{`unknown key "threshold" (did you mean "thresholds"?)`, `unknown rule "brand-tokn" (did you mean "brand-token"?)`,
		`cannot unmarshal`, `unknown key "x"`, `unknown site score "fake-flwo" (did you mean "fake-flow"?)`, `unknown key "tokenz" (did you mean "tokens"?)`}
	msgs := err.Error()
	for _, w := range want {
		if !strings.Contains(msgs, w) {
			t.Errorf("missing %q in:\n%s", w, msgs)
		}
	}
	for i := 1; i < len(errs); i++ {
		if errs[i].Line < errs[i-1].Line || errs[i].Line == 0 {
			t.Errorf("not in file order or without a line:\n%s", msgs)
		}
	}
	if strings.Contains(msgs, "thresholds must be") || strings.Contains(msgs, "has no tokens") {
		t.Errorf("consequences of a typo reported as errors of their own:\n%s", msgs)
	}
}

// Rules are data: a brand added in YAML is scored with no Go change.
func TestBrandAddedInYAML(t *testing.T) {
	y := strings.Replace(string(defaultRulesYAML), "brands:\n", "brands:\n  - name: Acmeprint\n    tokens: [acmeprint]\n    owned: [acmeprint.com]\n", 1)
	rs, err := Parse([]byte(y), "custom.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc := rs.NewScorer()
	if r := sc.Score("acmeprint-support.com"); r.Verdict != VerdictAlert || r.Brand != "Acmeprint" {
		t.Errorf("acmeprint-support.com: %+v", r)
	}
	if r := sc.Score("acmeprint.com"); r.Verdict != VerdictIgnore || !hasRule(r, RuleBrandOwned) {
		t.Errorf("acmeprint.com: %+v", r)
	}
	if r := sc.Score("acmeprnit.com"); r.Verdict != VerdictWatch || !hasRule(r, RuleBrandTypo) {
		t.Errorf("acmeprnit.com: %+v", r)
	}
}

// FuzzParseRules: any byte string either loads or fails with a located error; never a panic.
func FuzzParseRules(f *testing.F) {
	f.Add(defaultRulesYAML)
	f.Add([]byte("version: x\nthresholds: {alert: 50, watch: 30}\nbrands: [{name: A, tokens: [abcde]}]\n"))
	f.Add([]byte("brands: [{name: A, tokens: [abc]}, {name: A}]"))
	f.Add([]byte("patterns: [{name: p, regex: '('}]"))
	f.Add([]byte("{{{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		rs.NewScorer().Score("hp-support.com")
	})
}

func TestRequiredBytes(t *testing.T) {
	for expr, want := range map[string]string{
		`(^|[^0-9])1?8(00|33|44|55|66|77|88)[0-9]{3,}`: "8",
		`support-(hp|canon)`:                           "support-",
		`a+b*c{2}`:                                     "ac",
		`(?i)xyz`:                                      "",
		`x|y`:                                          "",
	} {
		if got := string(requiredBytes(expr)); got != want {
			t.Errorf("requiredBytes(%q) = %q, want %q", expr, got, want)
		}
	}
}

func TestScoreInOrder(t *testing.T) {
	rs := defaultRules(t)
	names := realisticMix(5000)
	batches := make(chan []Input, 2)
	go func() {
		for i := 0; i < len(names); i += 333 {
			b := make([]Input, 0, 333)
			for _, n := range names[i:min(i+333, len(names))] {
				b = append(b, Input{Name: n})
			}
			batches <- b
		}
		batches <- []Input{{Name: "bad name", Err: errors.New("not a name")}}
		close(batches)
	}()
	var got []Result
	err := rs.ScoreInOrder(4, batches, func(r *Result) error {
		got = append(got, clone(*r))
		return nil
	})
	if err != nil || len(got) != len(names)+1 {
		t.Fatalf("%d results, %v", len(got), err)
	}
	sc := rs.NewScorer()
	for i, n := range names {
		if want := sc.Score(n); got[i].Domain != n || got[i].Score != want.Score || got[i].Verdict != want.Verdict {
			t.Fatalf("result %d: %s %d, want %s %d", i, got[i].Domain, got[i].Score, n, want.Score)
		}
	}
	if last := got[len(got)-1]; last.Verdict != VerdictInvalid || last.Error != "not a name" {
		t.Errorf("invalid input: %+v", last)
	}
}
