package rules

// anchorScanner answers one question per label, fast: does it contain any word the scorer
// gives meaning to (a brand or product token, a printer word, a keyword)? Most names in the
// CT stream contain none, and for those the segmenter never runs. It is an Aho-Corasick
// automaton compiled to a dense transition table over a-z and 0-9.
type anchorScanner struct {
	next   [][anchorSymbols]int32
	output []bool
}

const anchorSymbols = 36

func anchorSymbol(c byte) int {
	switch {
	case c >= 'a' && c <= 'z':
		return int(c - 'a')
	case c >= '0' && c <= '9':
		return 26 + int(c-'0')
	}
	return -1
}

func newAnchorScanner(words []string) *anchorScanner {
	a := &anchorScanner{next: make([][anchorSymbols]int32, 1), output: []bool{false}}
	for i := range a.next[0] {
		a.next[0][i] = -1
	}
	for _, w := range words {
		st := int32(0)
		ok := true
		for i := 0; i < len(w); i++ {
			sym := anchorSymbol(w[i])
			if sym < 0 {
				ok = false
				break
			}
			if a.next[st][sym] < 0 {
				a.next = append(a.next, [anchorSymbols]int32{})
				for k := range a.next[len(a.next)-1] {
					a.next[len(a.next)-1][k] = -1
				}
				a.output = append(a.output, false)
				a.next[st][sym] = int32(len(a.next) - 1)
			}
			st = a.next[st][sym]
		}
		if ok && len(w) > 0 {
			a.output[st] = true
		}
	}
	// Breadth-first: failure links, then every missing transition becomes the failure
	// state's transition, so scanning is one table lookup per character.
	fail := make([]int32, len(a.next))
	var queue []int32
	for sym := 0; sym < anchorSymbols; sym++ {
		if s := a.next[0][sym]; s >= 0 {
			fail[s] = 0
			queue = append(queue, s)
		} else {
			a.next[0][sym] = 0
		}
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		if a.output[fail[st]] {
			a.output[st] = true
		}
		for sym := 0; sym < anchorSymbols; sym++ {
			if s := a.next[st][sym]; s >= 0 {
				fail[s] = a.next[fail[st]][sym]
				queue = append(queue, s)
			} else {
				a.next[st][sym] = a.next[fail[st]][sym]
			}
		}
	}
	return a
}

// contains reports whether s contains any anchor word. Characters outside a-z0-9 restart
// the match (they separate words).
func (a *anchorScanner) contains(s string) bool {
	st := int32(0)
	for i := 0; i < len(s); i++ {
		sym := anchorSymbol(s[i])
		if sym < 0 {
			st = 0
			continue
		}
		st = a.next[st][sym]
		if a.output[st] {
			return true
		}
	}
	return false
}
