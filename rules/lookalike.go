package rules

import (
	"sort"
	"strings"
)

// Look-alike kinds: how a candidate was made from a brand. Their names follow dnstwist's
// fuzzers where they do the same (docs/rules.md compares them).
const (
	LookOmission      = "omission"      // a letter left out: "canno"
	LookRepetition    = "repetition"    // a letter doubled: "caanon"
	LookTransposition = "transposition" // two letters swapped: "cnaon"
	LookReplacement   = "replacement"   // a letter replaced by its keyboard neighbour: "cabon"
	LookInsertion     = "insertion"     // a keyboard neighbour inserted: "cansnon"
	LookVowelSwap     = "vowel-swap"    // a vowel replaced by another: "canin"
	LookHomoglyph     = "homoglyph"     // ASCII look-alikes: "cann0n", "rn" for "m"
	LookHyphenation   = "hyphenation"   // a hyphen inside: "ca-non"
	LookHelpline      = "helpline"      // brand with helpline, setup or problem words: "canonprintersupport"
	LookTLDSwap       = "tld-swap"      // the brand alone under another TLD: "canon.support"
)

// LookAlikeKinds are every kind, in generation order: the shapes helpline scams take first,
// so that a bound keeps them.
var LookAlikeKinds = []string{LookTLDSwap, LookHelpline, LookHomoglyph, LookHyphenation, LookOmission, LookRepetition,
	LookTransposition, LookReplacement, LookInsertion, LookVowelSwap}

// typoKinds are tried under the first TLD only (com by default): a typo is registered where
// the brand is.
var typoKinds = map[string]bool{LookHomoglyph: true, LookHyphenation: true, LookOmission: true, LookRepetition: true,
	LookTransposition: true, LookReplacement: true, LookInsertion: true, LookVowelSwap: true}

// LookAlike is one candidate registrable domain.
type LookAlike struct {
	Domain string
	Brand  string
	Kind   string
}

// LookAlikeOptions bound the generation.
type LookAlikeOptions struct {
	// Brands restricts the brands (case-insensitive names; empty: all).
	Brands []string
	// Kinds restricts the kinds (empty: all).
	Kinds []string
	// TLDs are the suffixes the helpline and tld-swap names are tried under (default: com,
	// net and the first six of the rule file's abused TLDs); typos and look-alike characters
	// are tried under the first.
	TLDs []string
	// Max bounds the candidates (default 200,000); generation stops there, in kind order.
	Max int
}

var qwertyNeighbours = map[byte]string{
	'q': "wa", 'w': "qes", 'e': "wrd", 'r': "etf", 't': "ryg", 'y': "tuh", 'u': "yij", 'i': "uok", 'o': "ipl", 'p': "o",
	'a': "qsz", 's': "awdz", 'd': "sefx", 'f': "drgc", 'g': "fthv", 'h': "gyjb", 'j': "hukn", 'k': "jilm", 'l': "ko",
	'z': "asx", 'x': "zsdc", 'c': "xdfv", 'v': "cfgb", 'b': "vghn", 'n': "bhjm", 'm': "njk",
}

var asciiHomoglyphs = map[string][]string{
	"o": {"0"}, "l": {"1", "i"}, "i": {"1", "l"}, "e": {"3"}, "a": {"4"}, "s": {"5"}, "m": {"rn"}, "w": {"vv"}, "d": {"cl"},
	"g": {"q"}, "b": {"6"},
}

// helplineWords are the words combined with a brand, from the rule file's helpline, setup and
// problem groups and its printer words: the shapes helpline-scam names take.
func (rs *RuleSet) helplineWords() []string {
	var out []string
	for _, g := range rs.Source.Keywords {
		if g.Group != "helpline" && g.Group != "setup" && g.Group != "problem" {
			continue
		}
		for _, w := range g.Words {
			if len(w) >= 3 && !strings.ContainsAny(w, "0123456789") {
				out = append(out, w)
			}
		}
	}
	return out
}

// LookAlikes generates candidate registrable domains for the catalog's brands: typos of each
// brand token, ASCII look-alikes, the brand with helpline words, the brand alone under other
// TLDs. Each domain comes once (the first kind that made it), never a domain a brand owns nor
// one the rules score below watch, in kind order; counts has how many of each kind were made.
func (rs *RuleSet) LookAlikes(opts LookAlikeOptions) (out []LookAlike, counts map[string]int) {
	max := opts.Max
	if max <= 0 {
		max = 200000
	}
	tlds := opts.TLDs
	if len(tlds) == 0 {
		// com and net, and the first abused TLDs of the rule file (its list starts with the
		// ones helpline scams favour): about 80,000 names for the whole catalog, two hours of
		// DNS questions a day at 20 a second.
		tlds = append([]string{"com", "net"}, rs.Source.AbusedTLDs[:min(6, len(rs.Source.AbusedTLDs))]...)
	}
	kinds := map[string]bool{}
	for _, k := range opts.Kinds {
		kinds[k] = true
	}
	want := func(k string) bool { return len(kinds) == 0 || kinds[k] }
	brandOK := map[string]bool{}
	for _, b := range opts.Brands {
		brandOK[strings.ToLower(b)] = true
	}
	counts = map[string]int{}
	seen := map[string]bool{}
	scorer := rs.NewScorer()
	add := func(c LookAlike) {
		label, _, _ := strings.Cut(c.Domain, ".")
		if len(out) >= max || label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return
		}
		d := c.Domain
		if seen[d] {
			return
		}
		seen[d] = true
		if n, err := rs.Normalize(d); err != nil || n.owner >= 0 {
			return
		}
		// A name the rules would not keep as a case is not worth a question ("anon.com" from
		// "canon"): only candidates at watch or above are made.
		if scorer.Score(d).Verdict.Rank() < VerdictWatch.Rank() {
			return
		}
		out = append(out, c)
		counts[c.Kind]++
	}
	words := rs.helplineWords()
	printers := rs.Source.PrinterWords
	for _, kind := range LookAlikeKinds {
		if !want(kind) {
			continue
		}
		// Brand by brand, one name of each in turn: a bound leaves every brand some names.
		var perBrand [][]LookAlike
		for bi := range rs.Source.Brands {
			b := &rs.Source.Brands[bi]
			if len(brandOK) > 0 && !brandOK[strings.ToLower(b.Name)] {
				continue
			}
			var list []LookAlike
			for _, tok := range b.Tokens {
				tok = strings.ToLower(tok)
				if strings.ContainsAny(tok, " .") {
					continue
				}
				for _, label := range variants(kind, tok, words, printers, b.NoTypos) {
					for i, tld := range tlds {
						if typoKinds[kind] && (i > 0 || len(label) <= 2) {
							break
						}
						list = append(list, LookAlike{Domain: label + "." + tld, Brand: b.Name, Kind: kind})
					}
				}
			}
			perBrand = append(perBrand, list)
		}
		for i := 0; len(out) < max; i++ {
			more := false
			for _, list := range perBrand {
				if i < len(list) {
					more = true
					add(list[i])
				}
			}
			if !more {
				break
			}
		}
	}
	return out, counts
}

// variants are the labels of one kind for one brand token.
func variants(kind, tok string, words, printers []string, noTypos bool) []string {
	var out []string
	typo := func(s string) {
		if s != tok && !noTypos {
			out = append(out, s)
		}
	}
	switch kind {
	case LookOmission:
		for i := range tok {
			typo(tok[:i] + tok[i+1:])
		}
	case LookRepetition:
		for i := range tok {
			typo(tok[:i+1] + tok[i:])
		}
	case LookTransposition:
		for i := 0; i+1 < len(tok); i++ {
			typo(tok[:i] + string(tok[i+1]) + string(tok[i]) + tok[i+2:])
		}
	case LookReplacement:
		for i := range tok {
			for _, c := range qwertyNeighbours[tok[i]] {
				typo(tok[:i] + string(c) + tok[i+1:])
			}
		}
	case LookInsertion:
		for i := range tok {
			for _, c := range qwertyNeighbours[tok[i]] {
				typo(tok[:i+1] + string(c) + tok[i+1:])
			}
		}
	case LookVowelSwap:
		for i := range tok {
			if strings.IndexByte("aeiou", tok[i]) < 0 {
				continue
			}
			for _, v := range "aeiou" {
				typo(tok[:i] + string(v) + tok[i+1:])
			}
		}
	case LookHomoglyph:
		// Look-alike characters count even for brands whose misspellings do not.
		for i := range tok {
			for from, tos := range asciiHomoglyphs {
				if strings.HasPrefix(tok[i:], from) {
					for _, to := range tos {
						out = append(out, tok[:i]+to+tok[i+len(from):])
					}
				}
			}
		}
		sort.Strings(out)
	case LookHyphenation:
		for i := 1; i < len(tok); i++ {
			out = append(out, tok[:i]+"-"+tok[i:])
		}
	case LookHelpline:
		// The two shapes most helpline names take: brand+word and brand+printer+word.
		for _, w := range words {
			out = append(out, tok+w)
			if len(printers) > 0 {
				out = append(out, tok+printers[0]+w)
			}
		}
	case LookTLDSwap:
		out = append(out, tok)
	}
	return out
}
