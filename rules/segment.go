package rules

import "math/bits"

// Segmentation splits one label into tokens: hyphens and underscores separate parts, digit runs
// are their own tokens, and each run of letters is cut into vocabulary words by a shortest-cost
// dynamic program over the trie. Letters that no word covers become fragment tokens. A brand is
// only ever found as a whole token, so "php" stays a word and "tollbrothers" reads as
// "toll brothers", never as the brand "brother".

// token is one piece of a label: text[start:end].
type token struct {
	start, end int
	kind       tokenKind
	id         uint16
	sepBefore  bool // a hyphen, underscore or the label start precedes it
	sepAfter   bool // a hyphen, underscore or the label end follows it
}

const (
	wordCost      = 10
	shortWordCost = 14 // two-letter words are plausible by accident; prefer longer readings
	fragCost      = 25 // per letter no word covers
	// brandBonus lets a brand win over a split into short words ("canone" is canon+e, not
	// can+one); it is smaller than what a longer dictionary word saves, so "canonical",
	// "brothers" and "tollbrothers" keep their ordinary reading.
	brandBonus = 20
)

// segmentLabel appends the tokens of label to out.
func (rs *RuleSet) segmentLabel(label string, out []token) []token {
	i := 0
	sep := true
	for i < len(label) {
		c := label[i]
		switch {
		case c == '-' || c == '_':
			if len(out) > 0 {
				out[len(out)-1].sepAfter = true
			}
			sep = true
			i++
		case isDigit(c):
			j := i + 1
			// "24x7" is one token: an x between digits belongs to the number.
			for j < len(label) && (isDigit(label[j]) || label[j] == 'x' && j+1 < len(label) && isDigit(label[j+1]) && isDigit(label[j-1])) {
				j++
			}
			out = append(out, token{start: i, end: j, kind: kindDigits, sepBefore: sep})
			sep = false
			i = j
		case c >= 'a' && c <= 'z':
			j := i + 1
			for j < len(label) && label[j] >= 'a' && label[j] <= 'z' {
				j++
			}
			first := len(out)
			out = rs.segmentRun(label, i, j, out)
			out[first].sepBefore = sep
			sep = false
			i = j
		default: // a character with no Latin look-alike (from an IDN skeleton)
			j := i + 1
			for j < len(label) && !isDigit(label[j]) && (label[j] < 'a' || label[j] > 'z') && label[j] != '-' && label[j] != '_' {
				j++
			}
			// A change of script is a word boundary, as a hyphen is: "hp打印机" names HP.
			if len(out) > 0 {
				out[len(out)-1].sepAfter = true
			}
			out = append(out, token{start: i, end: j, kind: kindFragment, sepBefore: true, sepAfter: true})
			sep = true
			i = j
		}
	}
	if len(out) > 0 {
		out[len(out)-1].sepAfter = true
	}
	return out
}

// appendFragment merges adjacent fragments of one letter run (starting at from), so that "xyz"
// is one unknown piece, not three.
func appendFragment(out []token, t token, from int) []token {
	if n := len(out); n > 0 && out[n-1].kind == kindFragment && out[n-1].end == t.start && out[n-1].start >= from {
		out[n-1].end = t.end
		return out
	}
	return append(out, t)
}

// segmentRun segments label[from:to], which holds only letters a-z. A printer word that starts
// where the reading puts a word start is never hidden by a longer reading across it
// ("printerasistance" reads as print + eras + i + stance; "printerr" as print + err): the run is
// read again as what comes before it, the printer word, and what comes after it, so that a
// misspelled word after it is left unreadable and its typo is found.
func (rs *RuleSet) segmentRun(label string, from, to int, out []token) []token {
	first := len(out)
	out = rs.segmentWords(label, from, to, out)
	hasPrinter := false
	for _, t := range out[first:] {
		if t.kind == kindPrinter && t.id != printingWord {
			hasPrinter = true
			break
		}
	}
	if hasPrinter {
		return out
	}
	for _, t := range out[first:] {
		if w, weak, ok := rs.printerPrefix(label[t.start:to]); ok && !weak && len(w) > t.end-t.start {
			start, end := t.start, t.start+len(w)
			out = rs.segmentWords(label, from, start, out[:first])
			out = append(out, token{start: start, end: end, kind: kindPrinter})
			return rs.segmentWords(label, end, to, out)
		}
	}
	return out
}

// segmentWords is the shortest-cost reading of label[from:to] (letters a-z only).
func (rs *RuleSet) segmentWords(label string, from, to int, out []token) []token {
	if from >= to {
		return out
	}
	n := to - from
	if n > maxLabelLen {
		n = maxLabelLen
	}
	var cost [maxLabelLen + 1]int32
	var back [maxLabelLen + 1]int8 // length of the piece ending here
	var what [maxLabelLen + 1]term
	const inf = 1 << 30
	for i := 1; i <= n; i++ {
		cost[i] = inf
	}
	s := label[from : from+n]
	nodes, edges := rs.vocab.nodes, rs.vocab.edges
	for i := 0; i < n; i++ {
		base := cost[i]
		if base >= inf {
			continue
		}
		if c := base + fragCost; c < cost[i+1] {
			cost[i+1], back[i+1], what[i+1] = c, 1, term{}
		}
		// Inlined trie walk (letters only here): the hottest loop of the scorer.
		node := rs.vocab.root[s[i]-'a']
		for j := i; node >= 0; {
			t := nodes[node].term
			if t.kind >= kindWord {
				wc := int32(wordCost)
				if j-i+1 <= 2 {
					wc = shortWordCost
				}
				if t.kind == kindBrand {
					wc -= brandBonus
				}
				if c := base + wc; c < cost[j+1] || c == cost[j+1] && t.kind > what[j+1].kind {
					cost[j+1], back[j+1], what[j+1] = c, int8(j-i+1), t
				}
			}
			j++
			if j >= n {
				break
			}
			nd := &nodes[node]
			bit := uint32(1) << (s[j] - 'a')
			if nd.mask&bit == 0 {
				break
			}
			node = edges[nd.first+uint32(bits.OnesCount32(nd.mask&(bit-1)))].child
		}
	}
	// Walk back pointers into a small stack buffer, then emit in order.
	var stack [maxLabelLen]int8
	depth := 0
	for end := n; end > 0; end -= int(back[end]) {
		stack[depth] = int8(end)
		depth++
	}
	for k := depth - 1; k >= 0; k-- {
		end := int(stack[k])
		start := end - int(back[end])
		t := token{start: from + start, end: from + end, kind: what[end].kind, id: what[end].id}
		if t.kind == kindFragment {
			out = appendFragment(out, t, from)
		} else {
			out = append(out, t)
		}
	}
	if to-from > n { // beyond the label limit: cannot happen for valid labels, kept safe anyway
		out = appendFragment(out, token{start: from + n, end: to, kind: kindFragment}, from)
	}
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
