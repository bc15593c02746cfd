package rules

import (
	"math/bits"
	"strings"
)

// Edit distance and typo classification for brand look-alikes. The scorer compares short
// strings (labels, fragments) against a handful of brand tokens per name, so this is a bounded
// optimal-string-alignment distance on fixed stack arrays: no allocation, early exit once every
// cell of a row exceeds the bound.

const maxFuzzyLen = 32

// wildcard stands for a character of an internationalized label with no Latin look-alike in
// the UTS #39 table. In a mostly-Latin label it is almost always a disguised letter, so it
// matches any letter; wildcardsOK decides when a candidate has few enough to be read that way.
const wildcard = '~'

func wildcardsOK(s string) bool {
	w := strings.Count(s, string(wildcard))
	letters := len(s) - w
	return w == 0 || w <= 3 && letters >= 3 && letters > w
}

// boundedOSA returns the Damerau (optimal string alignment) distance between a and b, or
// limit+1 when it is larger than limit.
func boundedOSA[A, B ~string | ~[]byte](a A, b B, limit int) int {
	la, lb := len(a), len(b)
	if la > maxFuzzyLen || lb > maxFuzzyLen {
		return limit + 1
	}
	if d := la - lb; d > limit || -d > limit {
		return limit + 1
	}
	var rows [3][maxFuzzyLen + 1]int
	prev2, prev, cur := &rows[0], &rows[1], &rows[2]
	for j := 0; j <= lb; j++ {
		prev[j] = j
	}
	for i := 1; i <= la; i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= lb; j++ {
			cost := 1
			if a[i-1] == b[j-1] || a[i-1] == wildcard {
				cost = 0
			}
			v := prev[j-1] + cost
			if d := prev[j] + 1; d < v {
				v = d
			}
			if d := cur[j-1] + 1; d < v {
				v = d
			}
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				if d := prev2[j-2] + 1; d < v {
					v = d
				}
			}
			cur[j] = v
			if v < rowMin {
				rowMin = v
			}
		}
		if rowMin > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	if prev[lb] > limit {
		return limit + 1
	}
	return prev[lb]
}

// typoLimit is how many edits still read as the brand: none for 2-4 letter tokens (every short
// word is one edit from "hp" or "oki"), one up to 8 letters, two from 9 ("konicaminolta").
// Typosquatting generators and real kits make single edits; a second edit mostly finds
// unrelated words ("rotter" is not "brother").
func typoLimit(n int) int {
	switch {
	case n <= 4:
		return 0
	case n <= 8:
		return 1
	default:
		return 2
	}
}

// minTypoLen is the shortest candidate read as a misspelled brand: four-letter names one
// deletion away from a five-letter brand ("xero", "epso") are mostly other words and brands.
const minTypoLen = 5

// typoKind names the single edit that turns brand into cand, for the explanation; multi-edit
// typos are "edits".
func typoKind(cand, brand string) string {
	lc, lb := len(cand), len(brand)
	switch {
	case lc == lb+1:
		i := firstDiff(cand, brand)
		if i > 0 && cand[i] == cand[i-1] || i+1 < lc && cand[i] == cand[i+1] && i < lb && cand[i] == brand[i] {
			return "repetition"
		}
		if i == lb {
			return "addition"
		}
		return "insertion"
	case lc+1 == lb:
		return "omission"
	case lc == lb:
		i := firstDiff(cand, brand)
		if i+1 < lc && cand[i] == brand[i+1] && cand[i+1] == brand[i] && cand[i+2:] == brand[i+2:] {
			return "transposition"
		}
		if cand[i+1:] != brand[i+1:] {
			return "edits"
		}
		x := cand[i] ^ brand[i]
		if x&(x-1) == 0 {
			return "bitsquat"
		}
		if isVowel(cand[i]) && isVowel(brand[i]) {
			return "vowel-swap"
		}
		return "replacement"
	}
	return "edits"
}

func firstDiff(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

func isVowel(c byte) bool {
	return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y'
}

// letterMask is the set of letters in s, for a cheap pre-check before the distance: a string
// that lacks more than `limit` of the brand's distinct letters cannot be within `limit` edits.
func letterMask[S ~string | ~[]byte](s S) uint32 {
	var m uint32
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			m |= 1 << (c - 'a')
		}
	}
	return m
}

func popcount(x uint32) int { return bits.OnesCount32(x) }

// asciiFold rewrites the ASCII look-alikes typosquatters use (rn→m, vv→w, cl→d, 0→o, 1→l, ...)
// into one representative of each look-alike class (m, n, r and rn all become n; c and e
// become e). Brand and candidate are both folded, so the classes only need to be consistent. It writes into buf and returns the folded string and whether
// anything changed.
func asciiFold(s string, buf []byte) ([]byte, bool) {
	buf = buf[:0]
	changed := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i+1 < len(s) {
			if r := foldPair(c, s[i+1]); r != 0 {
				buf = append(buf, r)
				i++
				changed = true
				continue
			}
		}
		if r := foldSingle(c); r != 0 {
			buf = append(buf, r)
			changed = true
			continue
		}
		buf = append(buf, c)
	}
	return buf, changed
}

// lookalikeSwap reports whether s has a digit or a letter pair (rn, vv, cl, ...) that reads as
// another letter: what makes a name a look-alike of a brand whose misspellings do not count.
func lookalikeSwap(s string) bool {
	for i := 0; i < len(s); i++ {
		switch swapStart[s[i]] {
		case 1:
			return true
		case 2:
			if i+1 < len(s) && foldPair(s[i], s[i+1]) != 0 {
				return true
			}
		}
	}
	return false
}

// swapStart is 1 for digits (each reads as a letter) and 2 for the first letters of the pairs
// foldPair reads as one letter.
var swapStart = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	for a := 'a'; a <= 'z'; a++ {
		for b := 'a'; b <= 'z'; b++ {
			if foldPair(byte(a), byte(b)) != 0 {
				t[a] = 2
			}
		}
	}
	return t
}()

func foldPair(a, b byte) byte {
	switch uint16(a)<<8 | uint16(b) {
	case 'r'<<8 | 'n', 'r'<<8 | 'r', 'n'<<8 | 'n':
		return 'n' // m, which folds to n
	case 'v'<<8 | 'v':
		return 'w'
	case 'c'<<8 | 'l', 'd'<<8 | 'l':
		return 'd'
	case 'l'<<8 | 'c', 'i'<<8 | 'c', 'l'<<8 | 'k', 'i'<<8 | 'k':
		return 'k'
	case 'l'<<8 | 'h':
		return 'h'
	case 'l'<<8 | 'b':
		return 'b'
	}
	return 0
}

// foldClassMask is a superset of letterMask(asciiFold(s)), computed without folding: each
// character contributes its own letter, the letter it folds to, and the letters a pair it
// could start or end would fold to. A brand whose folded letters are not (nearly) all in it
// cannot match after folding, so the fold itself is skipped for most candidates.
func foldClassMask(s string) uint32 {
	var m uint32
	for i := 0; i < len(s); i++ {
		m |= foldClass[s[i]]
	}
	return m
}

var foldClass = func() (t [256]uint32) {
	bit := func(c byte) uint32 { return 1 << (c - 'a') }
	for c := 'a'; c <= 'z'; c++ {
		t[c] = bit(byte(c))
	}
	for c := 0; c < 256; c++ {
		if f := foldSingle(byte(c)); f != 0 {
			t[c] |= bit(f)
		}
		for d := 0; d < 256; d++ {
			if f := foldPair(byte(c), byte(d)); f != 0 {
				t[c] |= bit(f)
				t[d] |= bit(f)
			}
		}
	}
	return t
}()

func foldSingle(c byte) byte {
	switch c {
	case '0':
		return 'o'
	case '1', 'i':
		return 'l'
	case 'm', 'r':
		return 'n' // dnstwist and the kits swap m, n and r (camom, caror for canon)
	case 'c':
		return 'e'
	case '3':
		return 'e'
	case '4':
		return 'a'
	case '5':
		return 's'
	case '7':
		return 't'
	case '8':
		return 'b'
	case '9':
		return 'g'
	}
	return 0
}
