package rules

import (
	"bufio"
	"bytes"
	_ "embed"
	"math/bits"
	"sort"
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

// trieBuilder collects words before they are frozen into a trie.
type trieBuilder struct {
	words map[string]term
}

func newTrieBuilder() *trieBuilder { return &trieBuilder{words: map[string]term{}} }

// add records a word, keeping the strongest meaning when a word is added twice.
func (b *trieBuilder) add(w string, t term) {
	if len(w) == 0 || len(w) > maxLabelLen {
		return
	}
	for i := 0; i < len(w); i++ {
		if w[i] < 'a' || w[i] > 'z' {
			return
		}
	}
	if old, ok := b.words[w]; ok && old.kind >= t.kind {
		return
	}
	b.words[w] = t
}

// addList adds one word per line, skipping blank lines and # comments.
func (b *trieBuilder) addList(data []byte, t term) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		b.add(string(line), t)
	}
}

func (b *trieBuilder) build() *trie {
	words := make([]string, 0, len(b.words))
	for w := range b.words {
		words = append(words, w)
	}
	sort.Strings(words)

	// Build a pointer trie first, then lay it out breadth-first so that each node's children
	// are contiguous and sorted.
	type pnode struct {
		kids map[byte]*pnode
		term term
		id   int32
	}
	root := &pnode{kids: map[byte]*pnode{}}
	for _, w := range words {
		n := root
		for i := 0; i < len(w); i++ {
			k := n.kids[w[i]]
			if k == nil {
				k = &pnode{kids: map[byte]*pnode{}}
				n.kids[w[i]] = k
			}
			n = k
		}
		n.term = b.words[w]
	}
	t := &trie{}
	queue := []*pnode{root}
	root.id = 0
	t.nodes = append(t.nodes, trieNode{})
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		keys := make([]byte, 0, len(n.kids))
		for c := range n.kids {
			keys = append(keys, c)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		var mask uint32
		for _, c := range keys {
			mask |= 1 << (c - 'a')
		}
		t.nodes[n.id] = trieNode{first: uint32(len(t.edges)), mask: mask, term: n.term}
		for _, c := range keys {
			k := n.kids[c]
			k.id = int32(len(t.nodes))
			t.nodes = append(t.nodes, trieNode{})
			t.edges = append(t.edges, trieEdge{c: c, child: k.id})
			queue = append(queue, k)
		}
	}
	for i := range t.root {
		t.root[i] = -1
	}
	rn := t.nodes[0]
	for _, e := range t.edges[rn.first : rn.first+uint32(bits.OnesCount32(rn.mask))] {
		t.root[e.c-'a'] = e.child
	}
	return t
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
