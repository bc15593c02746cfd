package rules

import (
	"math/rand/v2"
	"testing"

	"github.com/agnivade/levenshtein"
)

// boundedOSA agrees with a plain Levenshtein distance (agnivade/levenshtein) where no
// transposition is involved, never exceeds it, and reports limit+1 beyond the limit.
func TestBoundedOSAAgainstLevenshtein(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	letters := "abcehnoprstx"
	word := func() string {
		b := make([]byte, 1+r.IntN(9))
		for i := range b {
			b[i] = letters[r.IntN(len(letters))]
		}
		return string(b)
	}
	for i := 0; i < 20000; i++ {
		a, b := word(), word()
		lev := levenshtein.ComputeDistance(a, b)
		for limit := 0; limit <= 3; limit++ {
			got := boundedOSA(a, b, limit)
			if got > limit+1 || got <= limit && got > lev {
				t.Fatalf("boundedOSA(%q, %q, %d) = %d, levenshtein %d", a, b, limit, got, lev)
			}
			if lev <= limit && got > limit {
				t.Fatalf("boundedOSA(%q, %q, %d) = %d misses a match at levenshtein %d", a, b, limit, got, lev)
			}
		}
	}
	if d := boundedOSA("lexmrak", "lexmark", 2); d != 1 {
		t.Errorf("a transposition is one edit, got %d", d)
	}
	if d := boundedOSA("e~son", "epson", 1); d != 0 {
		t.Errorf("the IDN wildcard matches any letter, got %d", d)
	}
}

func TestAsciiFold(t *testing.T) {
	for in, want := range map[string]string{"cann0n": "eanon", "camom": "eanon", "carrorr": "eanon", "1exmark": "lexnank", "vvorld": "wonld"} {
		got, changed := asciiFold(in, nil)
		if string(got) != want || !changed {
			t.Errorf("asciiFold(%q) = %q %v, want %q", in, got, changed, want)
		}
		if m := foldClassMask(in); letterMask(got)&^m != 0 {
			t.Errorf("foldClassMask(%q) misses letters of its fold %q", in, got)
		}
	}
}

func TestTrieFindsEveryWord(t *testing.T) {
	b := newTrieBuilder()
	words := []string{"a", "ab", "abc", "b", "canon", "canonical", "can", "zzz", "hp", "hpz"}
	for i, w := range words {
		b.add(w, term{kind: kindWord, id: uint16(i)})
	}
	tr := b.build()
	for i, w := range words {
		if got := tr.lookup(w); got.kind != kindWord || got.id != uint16(i) {
			t.Errorf("lookup(%q) = %+v", w, got)
		}
	}
	for _, w := range []string{"", "ca", "canonic", "zz", "hpzz", "x"} {
		if got := tr.lookup(w); got.kind != kindFragment {
			t.Errorf("lookup(%q) = %+v, want not found", w, got)
		}
	}
	rs := defaultRules(t)
	for _, w := range []string{"printer", "support", "canon", "laserjet", "brothers", "zebra"} {
		if rs.vocab.lookup(w).kind < kindWord {
			t.Errorf("default vocabulary misses %q", w)
		}
	}
}

func TestAnchorScanner(t *testing.T) {
	a := newAnchorScanner([]string{"hp", "support", "123", "canon"})
	for s, want := range map[string]bool{"myhpsite": true, "xsupportx": true, "a123b": true, "example": false, "h-p": false, "supporr": false, "cancanon": true} {
		if got := a.contains(s); got != want {
			t.Errorf("contains(%q) = %v, want %v", s, got, want)
		}
	}
}
