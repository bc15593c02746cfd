package rules

import (
	"net/netip"
	"regexp"
	"sort"
	"strings"
)

// RuleSet is a validated, compiled rule file. It is immutable and safe to share; each goroutine
// scores through its own Scorer.
type RuleSet struct {
	Source  *RuleFile
	Version string
	Alert   int
	Watch   int

	specs    map[string]RuleSpec
	brands   []brand
	groups   []KeywordGroup
	vocab    *trie
	suffixes map[string]suffixInfo // owned domains, brand TLDs and hosting platforms
	abused   map[string]bool
	patterns []pattern
	numeric  map[string]int // keywords made of digits ("123", "247", "24x7") -> group

	parkingNS    []string // name-server suffixes of parking services, lower case, no trailing dot
	parkingAddrs []netip.Prefix

	fuzzyBrands   []fuzzyTarget
	fuzzyKeywords []fuzzyTarget
	anchors       *anchorScanner
	// brandsByLen[L] lists the fuzzyBrands a candidate of length L can be within reach of.
	brandsByLen [maxFuzzyLen + 1][]int
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
		abused:   map[string]bool{},
		numeric:  map[string]int{},
	}
	if rs.specs == nil {
		rs.specs = map[string]RuleSpec{}
	}
	b := newTrieBuilder()
	b.addList(englishWords, term{kind: kindWord})
	for _, w := range rf.Vocabulary {
		b.add(w, term{kind: kindWord})
	}
	for _, w := range rf.PrinterWords {
		b.add(w, term{kind: kindPrinter})
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
				rs.fuzzyBrands = append(rs.fuzzyBrands, newFuzzyTarget(t, bi, lim))
			}
		}
		for _, p := range spec.Products {
			b.add(p, term{kind: kindProduct, id: uint16(bi)})
		}
		for _, p := range spec.CommonProducts {
			br.common[p] = true
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
		if t.kind >= kindPrinter {
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
	for _, ns := range rf.Parking.NameServers {
		rs.parkingNS = append(rs.parkingNS, strings.TrimSuffix(strings.ToLower(ns), "."))
	}
	for _, a := range rf.Parking.Addresses {
		rs.parkingAddrs = append(rs.parkingAddrs, netip.MustParsePrefix(a))
	}
	for _, p := range rf.Patterns {
		rs.patterns = append(rs.patterns, pattern{name: p.Name, re: regexp.MustCompile(p.Regex), points: p.Points, why: p.Why})
	}
	// Longer targets first: a name that is within reach of "konicaminolta" should say so
	// rather than match "konica" loosely.
	sort.SliceStable(rs.fuzzyBrands, func(i, j int) bool { return len(rs.fuzzyBrands[i].s) > len(rs.fuzzyBrands[j].s) })
	for i, ft := range rs.fuzzyBrands {
		for l := len(ft.s) - ft.limit - 1; l <= len(ft.s)+ft.limit+1; l++ {
			if l >= 0 && l <= maxFuzzyLen {
				rs.brandsByLen[l] = append(rs.brandsByLen[l], i)
			}
		}
	}
	return rs, nil
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
