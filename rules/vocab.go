package rules

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"fmt"
	"math/bits"
	"slices"
	"sync"
)

//go:embed words_en.txt
var englishWords []byte

// tokenKind says what a vocabulary word means to the scorer. Higher kinds win when one word has
// several meanings ("canon" is an English word and a brand: it is a brand).
type tokenKind uint8

const (
	kindFragment tokenKind = iota // not a word: letters the segmenter could not place
	kindDigits                    // a run of digits (or 24x7)
	kindWord                      // ordinary vocabulary
	kindPrinter                   // printer vocabulary; id printingWord for the weaker printing words
	kindKeyword                   // helpline/setup word; id is the keyword group
	kindProduct                   // product line; id is the brand
	kindBrand                     // brand token; id is the brand
)

// printingWord is the id of printer-kind terms that are printing vocabulary ("printing",
// "toner"), weaker than a printer word.
const printingWord = 1

// term is what a complete word in the trie stands for.
type term struct {
	kind tokenKind
	id   uint16
}

// trie is a compact, read-only prefix tree over lowercase a-z words. Children of a node are a
// sorted run in edges; the root's children are a direct table because every walk starts there.
type trie struct {
	nodes []trieNode
	edges []trieEdge
	root  [26]int32
}

type trieNode struct {
	first uint32 // index of the first child in edges
	mask  uint32 // bit c-'a' set when a child for letter c exists; children are in letter order
	term  term
}

type trieEdge struct {
	c     byte
	child int32
}

// trieBuilder collects words before they are frozen into a trie: a base of ordinary words,
// sorted once per process, and the rule set's own words over it.
type trieBuilder struct {
	base  []string // sorted, distinct, valid; every one kindWord
	words map[string]term
}

func newTrieBuilder() *trieBuilder { return &trieBuilder{words: map[string]term{}} }

// englishBase is the embedded English word list, read, checked and sorted once: a rule set is
// parsed many times over in tests and fuzzing, and the list never changes.
var englishBase = sync.OnceValue(func() []string {
	b := newTrieBuilder()
	sc := bufio.NewScanner(bytes.NewReader(englishWords))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		b.add(string(line), term{kind: kindWord})
	}
	words := make([]string, 0, len(b.words))
	for w := range b.words {
		words = append(words, w)
	}
	slices.Sort(words)
	return words
})

// addEnglish adds the embedded English word list as ordinary words.
func (b *trieBuilder) addEnglish() { b.base = englishBase() }

// validWord says whether w can be in the trie: 1 to 63 letters a-z.
func validWord(w string) bool {
	if len(w) == 0 || len(w) > maxLabelLen {
		return false
	}
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return false
		}
	}
	return true
}

// add records a word, keeping the strongest meaning when a word is added twice.
func (b *trieBuilder) add(w string, t term) {
	if !validWord(w) {
		return
	}
	if old, ok := b.words[w]; ok && old.kind >= t.kind {
		return
	}
	b.words[w] = t
}

// build lays the words out as a trie. The words are merged in sorted order (the rule set's own
// words win over the base, whose meaning is the weakest), and the trie is built depth first
// from the sorted list: the children of each node are one sorted run of edges, reserved before
// the children are visited. No map per node: building it is a walk over the letters.
func (b *trieBuilder) build() *trie {
	own := make([]string, 0, len(b.words))
	for w := range b.words {
		own = append(own, w)
	}
	slices.Sort(own)
	// The same words give the same trie, and a trie is never written once built: the last
	// one is kept for the next rule set with the same vocabulary (a rule set parsed again, or
	// one that differs in its thresholds or patterns only).
	key := sha256.New()
	fmt.Fprintf(key, "%d\x00", len(b.base))
	for _, w := range own {
		t := b.words[w]
		fmt.Fprintf(key, "%s\x00%d\x00%d\x00", w, t.kind, t.id)
	}
	var sum [32]byte
	key.Sum(sum[:0])
	lastTrie.Lock()
	defer lastTrie.Unlock()
	if lastTrie.t != nil && lastTrie.key == sum {
		return lastTrie.t
	}
	t := buildTrie(b.base, own, b.words)
	lastTrie.key, lastTrie.t = sum, t
	return t
}

// lastTrie is the trie built last and the digest of its words.
var lastTrie struct {
	sync.Mutex
	key [32]byte
	t   *trie
}

func buildTrie(base, own []string, meaning map[string]term) *trie {
	words := make([]string, 0, len(base)+len(own))
	terms := make([]term, 0, cap(words))
	i, j := 0, 0
	for i < len(base) || j < len(own) {
		switch {
		case j == len(own) || (i < len(base) && base[i] < own[j]):
			words, terms = append(words, base[i]), append(terms, term{kind: kindWord})
			i++
		default:
			if i < len(base) && base[i] == own[j] {
				i++ // the rule set's meaning is at least kindWord
			}
			words, terms = append(words, own[j]), append(terms, meaning[own[j]])
			j++
		}
	}
	t := &trie{nodes: make([]trieNode, 1, len(words)*2), edges: make([]trieEdge, 0, len(words)*2)}
	t.fill(0, words, terms, 0)
	for i := range t.root {
		t.root[i] = -1
	}
	rn := t.nodes[0]
	for _, e := range t.edges[rn.first : rn.first+uint32(bits.OnesCount32(rn.mask))] {
		t.root[e.c-'a'] = e.child
	}
	return t
}

// fill makes node n the root of words (sorted, all sharing their first depth letters): its term
// when one of them ends here, and its children, one per next letter.
func (t *trie) fill(n int32, words []string, terms []term, depth int) {
	if len(words[0]) == depth {
		t.nodes[n].term = terms[0]
		words, terms = words[1:], terms[1:]
	}
	first := uint32(len(t.edges))
	var mask uint32
	type group struct{ lo, hi int }
	var groups []group
	for lo := 0; lo < len(words); {
		c := words[lo][depth]
		hi := lo + 1
		for hi < len(words) && words[hi][depth] == c {
			hi++
		}
		mask |= 1 << (c - 'a')
		t.nodes = append(t.nodes, trieNode{})
		t.edges = append(t.edges, trieEdge{c: c, child: int32(len(t.nodes) - 1)})
		groups = append(groups, group{lo, hi})
		lo = hi
	}
	t.nodes[n].first, t.nodes[n].mask = first, mask
	for k, g := range groups {
		t.fill(t.edges[first+uint32(k)].child, words[g.lo:g.hi], terms[g.lo:g.hi], depth+1)
	}
}

// child returns the node reached from n by c, or -1. The child's position among its siblings
// is the number of smaller letters present, one popcount.
func (t *trie) child(n int32, c byte) int32 {
	if c < 'a' || c > 'z' {
		return -1
	}
	if n == 0 {
		return t.root[c-'a']
	}
	node := &t.nodes[n]
	bit := uint32(1) << (c - 'a')
	if node.mask&bit == 0 {
		return -1
	}
	return t.edges[node.first+uint32(bits.OnesCount32(node.mask&(bit-1)))].child
}

// lookup returns the meaning of a whole word, or kindFragment when it is not in the trie.
func (t *trie) lookup(w string) term {
	n := int32(0)
	for i := 0; i < len(w); i++ {
		if n = t.child(n, w[i]); n < 0 {
			return term{}
		}
	}
	return t.nodes[n].term
}
