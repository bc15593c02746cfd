package rules

import (
	"net/netip"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"
)

// RuleSet is a validated, compiled rule file. It is immutable and safe to share; each goroutine
// scores through its own Scorer.
type RuleSet struct {
	Source  *RuleFile
	Version string
	// Text is the rule file as read, and Hash its SHA-256 (hex): what a deployment records as
	// its active rule set, so every process of it scores with the same rules whatever file it
	// was started with. Two files with the same version but other content have other hashes.
	Text []byte
	Hash string
	// SourceName is the file it was read from, as given.
	SourceName string
	// Builtin is true for the embedded default rules.
	Builtin bool
	Alert   int
	Watch   int

	specs    map[string]RuleSpec
	brands   []brand
	groups   []KeywordGroup
	vocab    *trie
	suffixes map[string]suffixInfo // owned domains, brand TLDs and hosting platforms
	// suffixTails holds the last two labels of every multi-label key of suffixes: a name whose
	// last two labels are not among them has no owned domain or platform but a brand TLD, and
	// its longer tails are not looked up.
	suffixTails map[string]bool
	abused      map[string]bool
	patterns    []pattern
	numeric     map[string]int // keywords made of digits ("123", "247", "24x7") -> group
	trade       map[string]bool

	parkingNS    []string // name-server suffixes of parking services, lower case, no trailing dot
	parkingAddrs []netip.Prefix

	fuzzyBrands   []fuzzyTarget
	fuzzyKeywords []fuzzyTarget
	fuzzyPrinter  []fuzzyTarget // printer words of six letters or more
	// noTypos are the tokens of brands whose misspellings do not count, found only when a
	// name folds to one exactly (exactFold: folded token -> index in noTypos).
	noTypos       []fuzzyTarget
	exactFold     map[string]int
	fuzzyProducts []fuzzyTarget // distinctive products of seven letters or more
	anchors       *anchorScanner
	// brandsByLen[L] lists the fuzzyBrands a candidate of length L can be within reach of,
	// with the masks the prefilters read inline: most candidates are rejected by them, and
	// reading a contiguous array beats chasing each target.
	brandsByLen [maxFuzzyLen + 1][]lenTarget
}

type brand struct {
	name         string
	commonWord   bool
	needsPrinter bool
	tokens       []string
	owned        []string
	common       map[string]bool // product names that only count next to the brand
}

type pattern struct {
	name   string
	re     *regexp.Regexp
	points int
	why    string
	// needs are bytes every match contains: a name without one of them is not run through
	// the regular expression (Go's backtracker costs microseconds a name).
	needs []byte
}

// requiredBytes returns literal bytes that every match of re must contain: the single-byte
// literals of its top-level concatenation (through captures and repetitions of at least one).
// It may miss some; it never lists one a match can lack.
func requiredBytes(expr string) []byte {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil
	}
	var out []byte
	var walk func(r *syntax.Regexp)
	walk = func(r *syntax.Regexp) {
		switch r.Op {
		case syntax.OpLiteral:
			if r.Flags&syntax.FoldCase == 0 {
				for _, c := range r.Rune {
					if c < 128 {
						out = append(out, byte(c))
					}
				}
			}
		case syntax.OpCapture, syntax.OpPlus:
			walk(r.Sub[0])
		case syntax.OpRepeat:
			if r.Min >= 1 {
				walk(r.Sub[0])
			}
		case syntax.OpConcat:
			for _, sub := range r.Sub {
				walk(sub)
			}
		}
	}
	walk(re)
	return out
}

// lenTarget is a fuzzy brand target as a length bucket holds it.
type lenTarget struct {
	mask, foldMask uint32
	limit, fi      int32
}

// fuzzyTarget is a brand token or keyword that misspellings are measured against.
type fuzzyTarget struct {
	s        string
	folded   string
	mask     uint32
	foldMask uint32
	limit    int
	id       int
}

func compile(rf *RuleFile) (*RuleSet, error) {
	rs := &RuleSet{
		Source:   rf,
		Version:  rf.Version,
		Alert:    rf.Thresholds.Alert,
		Watch:    rf.Thresholds.Watch,
		specs:    rf.Rules,
		groups:   rf.Keywords,
		suffixes: map[string]suffixInfo{},

		suffixTails: map[string]bool{},
		abused:      map[string]bool{},
		numeric:     map[string]int{},
		trade:       map[string]bool{},

		exactFold: map[string]int{},
	}
	if rs.specs == nil {
		rs.specs = map[string]RuleSpec{}
	}
	b := newTrieBuilder()
	b.addEnglish()
	for _, w := range rf.Vocabulary {
		b.add(w, term{kind: kindWord})
	}
	for _, w := range rf.PrinterWords {
		b.add(w, term{kind: kindPrinter})
		if len(w) >= 6 {
			rs.fuzzyPrinter = append(rs.fuzzyPrinter, newFuzzyTarget(w, 0, 1))
		}
	}
	for _, w := range rf.TradeWords {
		rs.trade[w] = true
		b.add(w, term{kind: kindWord})
	}
	for _, w := range rf.PrintingWords {
		b.add(w, term{kind: kindPrinter, id: printingWord})
	}
	for gi, g := range rf.Keywords {
		for _, w := range g.Words {
			if isAllDigitsOrX(w) {
				rs.numeric[w] = gi
				continue
			}
			b.add(w, term{kind: kindKeyword, id: uint16(gi)})
			if len(w) >= 5 {
				rs.fuzzyKeywords = append(rs.fuzzyKeywords, newFuzzyTarget(w, gi, 1))
			}
		}
	}
	for bi, spec := range rf.Brands {
		br := brand{name: spec.Name, commonWord: spec.CommonWord, needsPrinter: spec.NeedsPrinter,
			tokens: spec.Tokens, owned: spec.Owned, common: map[string]bool{}}
		for _, t := range spec.Tokens {
			b.add(t, term{kind: kindBrand, id: uint16(bi)})
			if lim := typoLimit(len(t)); lim > 0 {
				if spec.NoTypos {
					// Exact look-alike foldings only ("k0dak"), no edits: one map lookup
					// instead of a place in the length buckets every candidate walks.
					ft := newFuzzyTarget(t, bi, 0)
					rs.exactFold[ft.folded] = len(rs.noTypos)
					rs.noTypos = append(rs.noTypos, ft)
					continue
				}
				rs.fuzzyBrands = append(rs.fuzzyBrands, newFuzzyTarget(t, bi, lim))
			}
		}
		for _, p := range spec.CommonProducts {
			br.common[p] = true
		}
		for _, p := range spec.Products {
			b.add(p, term{kind: kindProduct, id: uint16(bi)})
			if len(p) >= 7 && !br.common[p] {
				rs.fuzzyProducts = append(rs.fuzzyProducts, newFuzzyTarget(p, bi, 1))
			}
		}
		for _, d := range spec.Owned {
			info := rs.suffixes[d]
			info.owner = int16(bi)
			rs.suffixes[d] = info
		}
		rs.brands = append(rs.brands, br)
	}
	rs.vocab = b.build()
	var anchorWords []string
	for w, t := range b.words {
		// Printing words ("ink", "print") are not anchors: alone they score nothing, next to a
		// keyword or a brand (anchors) they are read anyway, and as substrings ("think",
		// "sprint") they would send ordinary labels to the segmenter.
		if t.kind >= kindPrinter && !(t.kind == kindPrinter && t.id == printingWord) {
			anchorWords = append(anchorWords, w)
		}
	}
	for w := range rs.numeric {
		anchorWords = append(anchorWords, w)
	}
	rs.anchors = newAnchorScanner(anchorWords)
	for _, t := range rf.AbusedTLDs {
		rs.abused[t] = true
	}
	for _, p := range rf.HostingPlatforms {
		info, ok := rs.suffixes[p]
		if !ok {
			info.owner = -1
		}
		info.platform = true
		rs.suffixes[p] = info
	}
	for key := range rs.suffixes {
		if strings.Contains(key, ".") {
			rs.suffixTails[lastLabels(key, 2)] = true
		}
	}
	for _, ns := range rf.Parking.NameServers {
		rs.parkingNS = append(rs.parkingNS, strings.TrimSuffix(strings.ToLower(ns), "."))
	}
	for _, a := range rf.Parking.Addresses {
		rs.parkingAddrs = append(rs.parkingAddrs, netip.MustParsePrefix(a))
	}
	for _, p := range rf.Patterns {
		rs.patterns = append(rs.patterns, pattern{name: p.Name, re: regexp.MustCompile(p.Regex), points: p.Points, why: p.Why,
			needs: requiredBytes(p.Regex)})
	}
	// Longer targets first: a name that is within reach of "konicaminolta" should say so
	// rather than match "konica" loosely.
	sort.SliceStable(rs.fuzzyBrands, func(i, j int) bool { return len(rs.fuzzyBrands[i].s) > len(rs.fuzzyBrands[j].s) })
	for i, ft := range rs.fuzzyBrands {
		for l := len(ft.s) - ft.limit - 1; l <= len(ft.s)+ft.limit+1; l++ {
			if l >= 0 && l <= maxFuzzyLen {
				rs.brandsByLen[l] = append(rs.brandsByLen[l], lenTarget{mask: ft.mask, foldMask: ft.foldMask, limit: int32(ft.limit), fi: int32(i)})
			}
		}
	}
	return rs, nil
}

// lastLabels returns the last n labels of a domain (all of it when it has fewer).
func lastLabels(d string, n int) string {
	i := len(d)
	for ; n > 0; n-- {
		j := strings.LastIndexByte(d[:i], '.')
		if j < 0 {
			return d
		}
		i = j
	}
	return d[i+1:]
}

func newFuzzyTarget(s string, id, limit int) fuzzyTarget {
	folded, _ := asciiFold(s, nil)
	return fuzzyTarget{s: s, folded: string(folded), mask: letterMask(s), foldMask: letterMask(string(folded)), limit: limit, id: id}
}

func isAllDigitsOrX(w string) bool {
	if w == "" || !isDigit(w[0]) {
		return false
	}
	return strings.Trim(w, "0123456789x") == ""
}

// spec returns the settings of a rule kind; a kind missing from the file scores nothing.
func (rs *RuleSet) spec(kind string) RuleSpec { return rs.specs[kind] }

// Brands lists the brand names of the catalog, in file order.
func (rs *RuleSet) Brands() []string {
	out := make([]string, len(rs.brands))
	for i, b := range rs.brands {
		out[i] = b.name
	}
	return out
}
