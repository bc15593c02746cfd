package output

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/helpwatch/helpwatch/rules"
)

// The hand-written JSON must decode to exactly what was encoded, for hostile strings too.
func TestAppendJSONRoundTrip(t *testing.T) {
	hostile := []string{"plain", "quote\" back\\slash", "<script>alert(1)</script>&", "ctl\x00\x1b[31m\n\t", "\xff\xfe bad utf8", "line\u2028sep", "һp-support"}
	for _, s := range hostile {
		r := rules.Result{Domain: s, Registrable: s, Verdict: rules.VerdictAlert, Brand: s, Score: 7,
			Reasons: []rules.Reason{{Rule: s, Points: 3, Detail: s}}, Error: s, RulesVersion: "v"}
		b := AppendJSON(nil, &r)
		if strings.ContainsAny(string(b), "<>\x00\x1b\n") {
			t.Errorf("unescaped control or HTML character in %q", b)
		}
		var got rules.Result
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		want := strings.Map(func(r rune) rune { return r }, s) // one U+FFFD per invalid byte
		if got.Domain != want || got.Reasons[0].Detail != want || got.Error != want || got.Score != 7 {
			t.Errorf("round trip of %q gave %+v", s, got)
		}
	}
}

func TestSafeCellAndPrintable(t *testing.T) {
	for in, want := range map[string]string{"=cmd()": "'=cmd()", "+1": "'+1", "-x": "'-x", "@a": "'@a", "ok": "ok", "": ""} {
		if got := SafeCell(in); got != want {
			t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Printable("a\x1b[2Jb\n"); strings.ContainsAny(got, "\x1b\n") {
		t.Errorf("Printable left control characters: %q", got)
	}
}
