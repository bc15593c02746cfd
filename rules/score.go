package rules

import (
	"fmt"
	"strings"
)

// Verdict is the scorer's decision for one name.
type Verdict string

const (
	VerdictAlert   Verdict = "alert"
	VerdictWatch   Verdict = "watch"
	VerdictIgnore  Verdict = "ignore"
	VerdictInvalid Verdict = "invalid"
)

// Reason is one rule's contribution to a score, in words.
type Reason struct {
	Rule   string `json:"rule"`
	Points int    `json:"points"`
	Detail string `json:"detail"`
}

// Result is the score of one name.
type Result struct {
	Domain       string   `json:"domain"`
	Unicode      string   `json:"unicode,omitempty"`
	Registrable  string   `json:"registrable"`
	Score        int      `json:"score"`
	Verdict      Verdict  `json:"verdict"`
	Brand        string   `json:"brand"`
	Reasons      []Reason `json:"reasons"`
	Error        string   `json:"error,omitempty"`
	RulesVersion string   `json:"rules_version"`
}

// Points is the sum of the reasons' points: the evidence before the score's cap at 100, which
// ranks cases the cap would tie.
func (r *Result) Points() int {
	n := 0
	for _, re := range r.Reasons {
		n += re.Points
	}
	return n
}

// Scorer scores names with one rule set. It keeps scratch buffers between calls, so it is not
// safe for concurrent use: give each goroutine its own (NewScorer is cheap).
type Scorer struct {
	rs    *RuleSet
	name  Name
	toks  []token
	frags []fragment
	// deferred lists labels skipped by the anchor scan, read in full only when needed.
	deferred []int
	buf      []byte
	join     []byte
	sig      signals
	label    int // the label being read
	psl      pslCache
}

// fragment is an unplaced piece of a label, kept for the keyword-typo pass.
type fragment struct {
	text    string
	inMain  bool
	borrowS bool // the token before it ends in an 's' that may belong to this run
}

// Brand evidence levels, weakest first.
const (
	levelNone = iota
	levelToken
	levelTypo
	levelHomoglyph
	levelLabel
)

type brandSig struct {
	level    int
	inMain   bool
	text     string // what the name says
	token    string // the brand token it stands for
	edit     string // typo kind
	product  string
	prodMain bool
	prodOK   bool   // a distinctive product, or a common one next to its brand
	prodTypo string // the name's misspelling of product, when it was not spelled right
	embedded string
}

type groupSig struct {
	found  bool
	inMain bool
	word   string
	typoOf string
}

type signals struct {
	brands      []brandSig
	touched     []int
	groups      []groupSig
	keywords    []string
	printer     string
	printerMain bool
	// printerWeak: the printer context is a printing word ("printing", "toner"), not a
	// printer; printerTypo: the name misspells a printer word as this.
	printerWeak bool
	printerTypo string
	trade       string // a trade word ("parts", "store") of the registrable label
	model       string // a model number right after a brand token ("mx922")
	modelBrand  int
}

// NewScorer returns a scorer for this rule set.
func (rs *RuleSet) NewScorer() *Scorer {
	return &Scorer{
		rs:  rs,
		sig: signals{brands: make([]brandSig, len(rs.brands)), groups: make([]groupSig, len(rs.groups))},
		buf: make([]byte, 0, 64), join: make([]byte, 0, 64),
	}
}

// Score scores one name and returns a fresh Result.
func (s *Scorer) Score(name string) Result {
	var r Result
	s.ScoreInto(name, &r)
	return r
}

// ScoreInto scores one name into r, reusing r.Reasons' storage. For an innocent lowercase ASCII
// name it does not allocate.
func (s *Scorer) ScoreInto(input string, r *Result) {
	rs := s.rs
	r.Domain, r.Unicode, r.Registrable, r.Brand, r.Error = input, "", "", "", ""
	r.Score, r.Verdict, r.Reasons, r.RulesVersion = 0, VerdictIgnore, r.Reasons[:0], rs.Version

	n := &s.name
	if s.psl == nil {
		s.psl = pslCache{}
	}
	if err := normalizeInto(n, input, rs, s.psl); err != nil {
		r.Verdict, r.Error = VerdictInvalid, err.Error()
		return
	}
	r.Unicode, r.Registrable = n.Unicode, n.Registrable
	if bi := n.owner; bi >= 0 {
		r.Brand = rs.brands[bi].name
		r.Reasons = append(r.Reasons, Reason{Rule: RuleBrandOwned, Points: 0,
			Detail: fmt.Sprintf("%s: %s belongs to %s", rs.spec(RuleBrandOwned).Why, n.OwnedBy, rs.brands[bi].name)})
		return
	}
	if n.Main < 0 {
		return
	}
	s.resetSignals()
	for li := 0; li <= n.Main; li++ {
		if !n.IDN[li] && !rs.anchors.contains(n.Text[li]) {
			// Nothing in this label means anything by itself: only a misspelled brand could
			// hide in it, as the whole label or a hyphen part. It is read in full only if
			// another label gives the name a brand or printer signal.
			s.fuzzyWholeLabel(li, n.Text[li], li == n.Main)
			s.deferred = append(s.deferred, li)
			continue
		}
		s.analyzeLabel(li)
	}
	if len(s.deferred) > 0 && s.hasSignal() {
		for _, li := range s.deferred {
			s.analyzeLabel(li)
		}
	}
	s.checkJoinedLabels()
	s.finish(r)
}

// hasSignal reports whether any label so far named a brand, a product or a printer.
func (s *Scorer) hasSignal() bool {
	if s.sig.printer != "" {
		return true
	}
	for _, bi := range s.sig.touched {
		if b := &s.sig.brands[bi]; b.level > levelNone || b.product != "" {
			return true
		}
	}
	return false
}

func (s *Scorer) resetSignals() {
	s.deferred = s.deferred[:0]
	for _, bi := range s.sig.touched {
		s.sig.brands[bi] = brandSig{}
	}
	s.sig.touched = s.sig.touched[:0]
	for i := range s.sig.groups {
		s.sig.groups[i] = groupSig{}
	}
	s.sig.keywords = s.sig.keywords[:0]
	s.sig.printer, s.sig.printerMain, s.sig.printerWeak, s.sig.printerTypo = "", false, false, ""
	s.sig.trade, s.sig.model = "", ""
	s.frags = s.frags[:0]
}

func (s *Scorer) brandSig(bi int) *brandSig {
	b := &s.sig.brands[bi]
	if b.level == levelNone && b.product == "" {
		s.sig.touched = append(s.sig.touched, bi)
	}
	return b
}

// noteBrand records brand evidence, keeping the strongest per brand.
func (s *Scorer) noteBrand(bi, level int, inMain bool, text, tok, edit string) {
	b := s.brandSig(bi)
	if level > b.level || level == b.level && inMain && !b.inMain {
		b.level, b.inMain, b.text, b.token, b.edit = level, inMain, text, tok, edit
	}
}

// analyzeLabel segments one label and records what its tokens say.
func (s *Scorer) analyzeLabel(li int) {
	rs := s.rs
	n := &s.name
	text := n.Text[li]
	inMain := li == n.Main
	s.label = li
	s.toks = rs.segmentLabel(text, s.toks[:0])
	toks := s.toks
	for i := range toks {
		t := &toks[i]
		word := text[t.start:t.end]
		switch t.kind {
		case kindBrand:
			bi := int(t.id)
			glued := s.gluedPrinter(text, i, inMain)
			if !s.brandTokenBounded(bi, i) && !s.nextToKeywordTypo(text, i) && !glued {
				// "whp", "chpk": the brand letters are part of something unreadable.
				break
			}
			level, edit := levelToken, ""
			foreign := s.foreignIn(li, t.start, t.end)
			if foreign {
				level, edit = levelHomoglyph, "look-alike characters"
			}
			if inMain && len(toks) == 1 && !foreign && word == text {
				level = levelLabel
			}
			s.noteBrand(bi, level, inMain, word, word, edit)
			// A short brand must start its part to own the number ("newtoki466" is not OKI's).
			if m := modelAfter(text[t.end:]); m != "" && s.sig.model == "" && !foreign && (t.end-t.start > 3 || t.sepBefore) {
				s.sig.model, s.sig.modelBrand = m, bi
			}
			if i+1 < len(toks) && toks[i+1].kind >= kindWord {
				if next := text[toks[i+1].start:toks[i+1].end]; next == "com" || next == "net" || next == "org" {
					b := s.brandSig(bi)
					b.embedded = word + next
				}
			}
		case kindProduct:
			bi := int(t.id)
			b := s.brandSig(bi)
			if b.product == "" || inMain && !b.prodMain {
				b.product, b.prodMain = word, inMain
			}
		case kindPrinter:
			s.notePrinter(word, t.id == printingWord, inMain)
		case kindKeyword:
			s.noteKeyword(int(t.id), word, "", inMain)
		case kindWord:
			if inMain && rs.trade[word] {
				s.sig.trade = word
			}
		case kindDigits:
			if g := rs.numericGroup(word); g >= 0 {
				s.noteKeyword(g, word, "", inMain)
			}
		}
	}
	if s.sig.printerWeak || s.sig.printer == "" {
		s.printingTypo(text, inMain)
	}
	s.gaps(li, text, inMain)
	s.fuzzyWholeLabel(li, text, inMain)
}

// modelAfter is the model number at the front of rest (after a brand token, a hyphen
// allowed): up to four letters, three to five digits, up to three letters ("mx922",
// "l3150", "hll2350dw", "3755").
func modelAfter(rest string) string {
	if len(rest) > 0 && (rest[0] == '-' || rest[0] == '_') {
		rest = rest[1:]
	}
	i := 0
	for i < len(rest) && i < 4 && rest[i] >= 'a' && rest[i] <= 'z' {
		i++
	}
	d := i
	for d < len(rest) && isDigit(rest[d]) {
		d++
	}
	if n := d - i; n < 3 || n > 5 || d < len(rest) && isDigit(rest[d]) {
		return ""
	}
	e := d
	for e < len(rest) && e-d < 3 && rest[e] >= 'a' && rest[e] <= 'z' {
		e++
	}
	return rest[:e]
}

// notePrinter records printer vocabulary: a printer word beats a printing word; the
// registrable label beats a subdomain.
func (s *Scorer) notePrinter(word string, weak, inMain bool) {
	if p := &s.sig; p.printer == "" || p.printerWeak && !weak || p.printerWeak == weak && inMain && !p.printerMain {
		p.printer, p.printerMain, p.printerWeak = word, inMain, weak
	}
}

// gluedPrinter finds the printer word a longer reading hid right after the brand token i: the
// brand's last letter shared with it ("hprinter": hp + printer, which segments as hp + r +
// inter), or the brand's "s" ("brothersprinter": brother's printer, which segments as
// brother + sprinter). The printer word is recorded; true says there was one.
func (s *Scorer) gluedPrinter(text string, i int, inMain bool) bool {
	t := s.toks[i]
	if t.sepAfter || t.end >= len(text) {
		return false
	}
	for _, from := range []int{t.end - 1, t.end + 1} {
		if from >= len(text) || from == t.end+1 && text[t.end] != 's' {
			continue
		}
		if w, weak, ok := s.rs.printerPrefix(text[from:]); ok {
			s.notePrinter(w, weak, inMain)
			return true
		}
	}
	return false
}

// printerPrefix is the longest printer or printing word that text starts with.
func (rs *RuleSet) printerPrefix(text string) (word string, weak, ok bool) {
	v := rs.vocab
	n := int32(0)
	for j := 0; j < len(text); j++ {
		if n = v.child(n, text[j]); n < 0 {
			break
		}
		if tm := v.nodes[n].term; tm.kind == kindPrinter {
			word, weak, ok = text[:j+1], tm.id == printingWord, true
		}
	}
	return word, weak, ok
}

// printingTypo reads a printing word glued to unplaced letters as a misspelled printer word:
// "printr" segments as "print" + "r", "prinnter" as "prin" ... and is one edit from "printer".
func (s *Scorer) printingTypo(text string, inMain bool) {
	toks := s.toks
	for i := range toks {
		t := toks[i]
		if t.kind != kindPrinter || t.id != printingWord {
			continue
		}
		start, end := t.start, t.end
		if i+1 < len(toks) && !t.sepAfter && toks[i+1].kind == kindFragment {
			end = toks[i+1].end
		} else if i > 0 && !t.sepBefore && toks[i-1].kind == kindFragment {
			start = toks[i-1].start
		}
		if end-start == t.end-t.start || end-start < 6 || end-start > maxFuzzyLen {
			continue
		}
		if fi := oneEdit(s.rs.fuzzyPrinter, text[start:end]); fi >= 0 {
			p := &s.sig
			p.printer, p.printerMain, p.printerWeak, p.printerTypo = s.rs.fuzzyPrinter[fi].s, inMain, false, text[start:end]
			return
		}
	}
}

// foreignIn reports whether bytes start..end of label li's text came from non-ASCII
// characters (only IDN labels have any).
func (s *Scorer) foreignIn(li, start, end int) bool {
	f := s.name.Foreign[li]
	if f == "" {
		return false
	}
	return strings.IndexByte(f[start:end], '1') >= 0
}

// fuzzyWholeLabel checks the whole label and its hyphen parts for a misspelled brand:
// "lexmrak", "canon0", "ca-non", "lexmark-0".
func (s *Scorer) fuzzyWholeLabel(li int, text string, inMain bool) {
	s.fuzzyPart(text, inMain, s.foreignIn(li, 0, len(text)))
	if strings.IndexByte(text, '-') >= 0 {
		for off := 0; off < len(text); {
			end := strings.IndexByte(text[off:], '-')
			if end < 0 {
				end = len(text)
			} else {
				end += off
			}
			if end > off {
				s.fuzzyPart(text[off:end], inMain, s.foreignIn(li, off, end))
			}
			off = end + 1
		}
		s.checkHyphenation(text, inMain)
	}
}

// gaps looks at each run of plain words and fragments between the meaningful tokens:
// "lexmrak" in "lexmrakprintersupport", "stup" in "hpstup". A run with unplaceable letters may
// be a misspelled brand. Every run that is not a single dictionary word is kept for the
// keyword-typo pass, which only runs when the name has a brand or printer signal.
func (s *Scorer) gaps(li int, text string, inMain bool) {
	toks := s.toks
	for i := 0; i < len(toks); {
		if k := toks[i].kind; k != kindWord && k != kindFragment {
			i++
			continue
		}
		j, hasFrag := i, false
		for ; j < len(toks) && (toks[j].kind == kindWord || toks[j].kind == kindFragment); j++ {
			if toks[j].kind == kindFragment {
				hasFrag = true
			}
			if toks[j].sepAfter {
				j++
				break
			}
		}
		start, end := toks[i].start, toks[j-1].end
		// A plural before the run may have taken the run's first letter: "printers|uport".
		borrowS := i > 0 && !toks[i].sepBefore && toks[i-1].kind >= kindPrinter && text[toks[i].start-1] == 's'
		single := j == i+1 && !hasFrag
		i = j
		if end-start >= 3 && !single {
			s.frags = append(s.frags, fragment{text: text[start:end], inMain: inMain, borrowS: borrowS})
		}
		if hasFrag && end-start >= 4 && end-start != len(text) {
			s.fuzzyBrand(text[start:end], inMain, s.foreignIn(li, start, end))
		}
	}
}

// nextToKeywordTypo accepts a short brand whose unreadable neighbour is a misspelled keyword
// ("hpstup", "suporthp"): the neighbour run up to the next separator or meaningful token.
func (s *Scorer) nextToKeywordTypo(text string, i int) bool {
	toks := s.toks
	if j := i + 1; j < len(toks) && !toks[i].sepAfter {
		k := j
		for k < len(toks) && toks[k].kind <= kindWord && toks[k].kind != kindDigits && !toks[k].sepBefore {
			k++
			if toks[k-1].sepAfter {
				break
			}
		}
		if k > j && s.rs.keywordTypo(text[toks[j].start:toks[k-1].end]) >= 0 {
			return true
		}
	}
	if j := i - 1; j >= 0 && !toks[i].sepBefore {
		k := j
		for k >= 0 && toks[k].kind <= kindWord && toks[k].kind != kindDigits && !toks[k].sepAfter {
			k--
			if toks[k+1].sepBefore {
				break
			}
		}
		if k < j && s.rs.keywordTypo(text[toks[k+1].start:toks[j].end]) >= 0 {
			return true
		}
	}
	return false
}

// brandTokenBounded reports whether brand token i is readable as a word of its own: a short
// brand ("hp", "oki") needs separators, digits or words on both sides ("whp", "chpk" are not
// HP); a brand that is also an English word ("canon", "brother", "sharp") on at least one side.
func (s *Scorer) brandTokenBounded(bi, i int) bool {
	t := s.toks[i]
	leftOK := t.sepBefore || i > 0 && s.toks[i-1].kind != kindFragment || s.scriptChange(t.start)
	rightOK := t.sepAfter || i+1 < len(s.toks) && s.toks[i+1].kind != kindFragment || s.scriptChange(t.end)
	switch {
	case t.end-t.start <= 3:
		return leftOK && rightOK
	case s.rs.brands[bi].commonWord:
		return leftOK || rightOK
	}
	return true
}

// scriptChange reports whether, in an IDN label, the letters before and after position p came
// one from ASCII and the other from another script: "hpсупорт" is "hp" next to Cyrillic, a
// word boundary a reader sees.
func (s *Scorer) scriptChange(p int) bool {
	if s.label < 0 {
		return false
	}
	f := s.name.Foreign[s.label]
	return f != "" && p > 0 && p < len(f) && f[p-1] != f[p]
}

// tokenFor returns the brand's own copy of token w, so that a match keeps no scratch memory.
func (b *brand) tokenFor(w string) string {
	for _, t := range b.tokens {
		if t == w {
			return t
		}
	}
	return strings.Clone(w)
}

func (rs *RuleSet) numericGroup(w string) int {
	if g, ok := rs.numeric[w]; ok {
		return g
	}
	return -1
}

func (rs *RuleSet) exactBrand(w string) (int, bool) {
	t := rs.vocab.lookup(w)
	if t.kind == kindBrand {
		return int(t.id), true
	}
	return 0, false
}

func (s *Scorer) noteKeyword(g int, word, typoOf string, inMain bool) {
	gs := &s.sig.groups[g]
	if !gs.found || inMain && !gs.inMain {
		gs.found, gs.inMain, gs.word, gs.typoOf = true, inMain, word, typoOf
	}
	for _, k := range s.sig.keywords {
		if k == word {
			return
		}
	}
	s.sig.keywords = append(s.sig.keywords, word)
}

// fuzzyPart checks a whole label or hyphen part for being a brand with one small change.
// A part that is itself a vocabulary word ("cannon", "bother") is left alone. idn says the
// part holds characters that were not ASCII.
func (s *Scorer) fuzzyPart(part string, inMain, idn bool) {
	if len(part) < 4 || len(part) > maxFuzzyLen {
		return
	}
	if t := s.rs.vocab.lookup(part); t.kind >= kindWord {
		if t.kind == kindBrand && idn {
			s.noteBrand(int(t.id), levelHomoglyph, inMain, part, part, "look-alike characters")
			return
		}
		// An ordinary word spelled in plain ASCII is what it says; the same word made with
		// look-alike characters ("epṡom") is a disguise, and is compared with the brands.
		if !idn {
			return
		}
	}
	s.fuzzyBrand(part, inMain, idn)
}

// fuzzyBrand compares one candidate string against the brand tokens, directly and after
// folding ASCII look-alikes (rn→m, 0→o, ...).
func (s *Scorer) fuzzyBrand(cand string, inMain, idn bool) {
	if len(cand) < minTypoLen || idn && !wildcardsOK(cand) {
		return
	}
	cmask := letterMask(cand)
	// A wildcard (a character with no Latin look-alike) can be any letter: the letter-mask
	// prefilters allow one missing letter per wildcard.
	wild := 0
	if idn {
		wild = strings.Count(cand, string(wildcard))
	}
	classMask := uint32(0)
	var folded []byte
	var fmask uint32
	foldDone, foldChanged := false, false
	if len(cand) > maxFuzzyLen {
		return
	}
	bucket := s.rs.brandsByLen[len(cand)]
	for bi := range bucket {
		lt := &bucket[bi]
		// Each edit brings at most one letter the target lacks, and takes at most one away.
		direct := popcount(lt.mask&^cmask) <= int(lt.limit)+wild && popcount(cmask&^lt.mask) <= int(lt.limit)
		if !direct {
			// The look-alike path below needs the target's letters among the candidate's
			// look-alike classes; reject here without touching the target.
			if classMask == 0 {
				classMask = foldClassMask(cand)
			}
			foldLimit := int(lt.limit)
			if popcount(lt.foldMask&^classMask) > foldLimit+wild {
				continue
			}
		}
		ft := &s.rs.fuzzyBrands[lt.fi]
		if direct {
			if dist := boundedOSA(cand, ft.s, ft.limit); dist <= ft.limit && (dist > 0 || idn) {
				level, edit := levelTypo, typoKind(cand, ft.s)
				if idn {
					level, edit = levelHomoglyph, "look-alike characters"
				} else if f, changed := asciiFold(cand, s.buf); changed && string(f) == ft.folded && (edit == "replacement" || edit == "bitsquat") {
					// "1exmark": one edit, but the edit is a look-alike character.
					s.buf = f
					level, edit = levelHomoglyph, "look-alike letters"
				}
				s.noteBrand(ft.id, level, inMain, cand, ft.s, edit)
				return
			}
		}
		// Look-alike letters are already one deception: on a short brand allow no further
		// edit ("cann0n" yes, "chron" no); long brands keep their typo allowance.
		foldLimit := ft.limit
		if len(ft.s) < 7 {
			foldLimit = 0
		}
		if classMask == 0 {
			classMask = foldClassMask(cand)
		}
		if popcount(ft.foldMask&^classMask) > foldLimit+wild {
			continue
		}
		if !foldDone {
			s.buf, foldChanged = asciiFold(cand, s.buf)
			folded, foldDone = s.buf, true
			fmask = letterMask(folded)
		}
		if foldChanged && popcount(ft.foldMask&^fmask) <= foldLimit+wild && popcount(fmask&^ft.foldMask) <= foldLimit {
			dist := foldLimit + 1
			if foldLimit == 0 && strings.IndexByte(string(folded), wildcard) < 0 {
				if string(folded) == ft.folded {
					dist = 0
				}
			} else {
				dist = boundedOSA(folded, ft.folded, foldLimit)
			}
			if dist <= foldLimit {
				edit := "look-alike letters"
				if dist > 0 {
					edit = "look-alike letters and a typo"
				}
				s.noteBrand(ft.id, levelHomoglyph, inMain, cand, ft.s, edit)
				return
			}
		}
	}
	if len(s.rs.noTypos) == 0 || wild == 0 && !lookalikeSwap(cand) {
		return
	}
	if !foldDone {
		s.buf, foldChanged = asciiFold(cand, s.buf)
		folded = s.buf
	}
	if !foldChanged {
		return
	}
	if i, ok := s.rs.exactFold[string(folded)]; ok {
		ft := &s.rs.noTypos[i]
		s.noteBrand(ft.id, levelHomoglyph, inMain, cand, ft.s, "look-alike letters")
		return
	}
	if wild > 0 {
		for i := range s.rs.noTypos {
			if ft := &s.rs.noTypos[i]; len(ft.folded) == len(folded) && boundedOSA(folded, ft.folded, 0) == 0 {
				s.noteBrand(ft.id, levelHomoglyph, inMain, cand, ft.s, "look-alike characters")
				return
			}
		}
	}
}

// checkHyphenation reads a label with a hyphen cut into a word ("ca-non", "mijstartcano-n")
// without its hyphens. Only labels with a part of one or two letters are re-read: that is the
// shape of a hyphen inserted into a word, and it keeps ordinary hyphenated names off this path.
func (s *Scorer) checkHyphenation(text string, inMain bool) {
	short := false
	for rest := text; rest != ""; {
		i := strings.IndexByte(rest, '-')
		part := rest
		if i >= 0 {
			part, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if len(part) > 0 && len(part) <= 2 {
			short = true
		}
	}
	if !short {
		return
	}
	s.stripHyphens(text)
	joined := string(s.join) // rare path: a copy is fine
	s.toks = s.rs.segmentLabel(joined, s.toks[:0])
	// Positions in the joined text are not the label's: no script boundaries here.
	label := s.label
	s.label = -1
	defer func() { s.label = label }()
	for i, t := range s.toks {
		if t.kind != kindBrand || !s.brandTokenBounded(int(t.id), i) || !spansHyphen(text, t.start, t.end) {
			continue
		}
		tok := joined[t.start:t.end]
		s.noteBrand(int(t.id), levelTypo, inMain, text, s.rs.brands[t.id].tokenFor(tok), "hyphenation")
	}
}

// spansHyphen reports whether letters start..end of text-without-hyphens had a hyphen between
// them in text: only then is the brand itself cut ("ca-non"), not merely next to one.
func spansHyphen(text string, start, end int) bool {
	pos := 0 // index in the hyphen-free string
	for i := 0; i < len(text); i++ {
		if text[i] == '-' {
			if pos > start && pos < end {
				return true
			}
			continue
		}
		pos++
	}
	return false
}

// stripHyphens leaves t without hyphens in s.join.
func (s *Scorer) stripHyphens(t string) {
	s.join = s.join[:0]
	for i := 0; i < len(t); i++ {
		if t[i] != '-' {
			s.join = append(s.join, t[i])
		}
	}
}

// checkJoinedLabels catches a brand split by dots ("ca.non.com", "lex.mark.net").
func (s *Scorer) checkJoinedLabels() {
	n := &s.name
	if n.Main < 1 {
		return
	}
	s.join = s.join[:0]
	for li := 0; li <= n.Main; li++ {
		s.join = append(s.join, n.Text[li]...)
	}
	if len(s.join) > maxFuzzyLen {
		return
	}
	if bi, ok := s.rs.exactBrand(string(s.join)); ok {
		s.noteBrand(bi, levelTypo, true, strings.Join(n.Labels[:n.Main+1], "."),
			s.rs.brands[bi].tokenFor(string(s.join)), "split across labels")
	}
}

// Rank orders verdicts for thresholds: invalid and ignore rank below watch, watch below alert.
func (v Verdict) Rank() int {
	switch v {
	case VerdictAlert:
		return 3
	case VerdictWatch:
		return 2
	case VerdictIgnore:
		return 1
	}
	return 0
}

// ParseVerdict reads a verdict name given on a command line.
func ParseVerdict(s string) (Verdict, error) {
	switch v := Verdict(strings.ToLower(strings.TrimSpace(s))); v {
	case VerdictAlert, VerdictWatch, VerdictIgnore, VerdictInvalid:
		return v, nil
	}
	return "", fmt.Errorf("unknown verdict %q (want alert, watch, ignore or invalid)", s)
}
