package rules

import (
	"fmt"
	"slices"
	"strings"
)

// finish turns the collected signals into points, reasons and a verdict. Only names with a
// brand, product or printer signal get this far with anything to add, so the formatting here
// is off the hot path.
func (s *Scorer) finish(r *Result) {
	rs := s.rs
	sig := &s.sig
	n := &s.name

	s.misspelledSignals()
	printerCtx := sig.printer != ""
	for _, bi := range sig.touched {
		b := &sig.brands[bi]
		b.prodOK = b.product != "" && (!rs.brands[bi].common[b.product] || b.level > levelNone)
		if b.prodOK {
			printerCtx = true
		}
	}
	best, bestPts := -1, -1
	for _, bi := range sig.touched {
		b := &sig.brands[bi]
		if b.level == levelNone && !b.prodOK {
			continue
		}
		if rs.brands[bi].needsPrinter && !printerCtx {
			continue // "samsungcloud": a big brand is only a printer brand next to printer words
		}
		if p := s.brandPoints(b) + s.productPoints(b); p > bestPts {
			best, bestPts = bi, p
		}
	}
	if best < 0 && sig.printer == "" {
		return
	}

	s.keywordTypos()
	add := func(rule string, points int, detail string) {
		r.Reasons = append(r.Reasons, Reason{Rule: rule, Points: points, Detail: detail})
		r.Score += points
	}
	brandCounted := false
	if best >= 0 {
		b := &sig.brands[best]
		br := &rs.brands[best]
		r.Brand = br.name
		if b.level > levelNone {
			brandCounted = true
			rule := levelRule(b.level)
			if b.level == levelLabel {
				rule = s.labelRule()
			}
			add(rule, s.brandPoints(b), rs.spec(rule).Why+": "+s.brandDetail(b, br)+s.where(b.inMain))
		}
		if b.prodOK {
			brandCounted = true
			if b.prodTypo != "" {
				add(RuleProductTypo, s.productPoints(b),
					rs.spec(RuleProductTypo).Why+": "+q(b.prodTypo)+" reads as "+q(b.product)+" ("+br.name+")"+s.where(b.prodMain))
			} else {
				add(RuleProductLine, s.productPoints(b),
					rs.spec(RuleProductLine).Why+": "+q(b.product)+" ("+br.name+")"+s.where(b.prodMain))
			}
		}
		if spec, ok := rs.Source.Rules[RuleModelNumber]; ok && sig.model != "" && sig.modelBrand == best && b.level == levelToken && !br.needsPrinter {
			add(RuleModelNumber, spec.Points, spec.Why+": "+q(sig.model)+" ("+br.name+")")
		}
		if spec, ok := rs.Source.Rules[RuleBrandList]; ok && b.level == levelToken && !br.needsPrinter {
			var others []string
			for _, bi := range sig.touched {
				if o := &sig.brands[bi]; bi != best && o.level == levelToken && !rs.brands[bi].needsPrinter {
					others = append(others, rs.brands[bi].name)
				}
			}
			if len(others) > 0 {
				add(RuleBrandList, spec.Points, spec.Why+": "+br.name+", "+strings.Join(others, ", "))
			}
		}
		if emb := s.embeddedDomain(best, b); emb != "" {
			add(RuleBrandEmbedded, rs.spec(RuleBrandEmbedded).Points, rs.spec(RuleBrandEmbedded).Why+": "+q(emb))
		}
	}
	if sig.printer != "" {
		switch {
		case sig.printerTypo != "":
			add(RulePrinterTypo, s.scaled(rs.spec(RulePrinterTypo).Points, sig.printerMain),
				rs.spec(RulePrinterTypo).Why+": "+q(sig.printerTypo)+" reads as "+q(sig.printer)+s.where(sig.printerMain))
		case sig.printerWeak:
			add(RulePrintingWord, s.scaled(rs.spec(RulePrintingWord).Points, sig.printerMain),
				rs.spec(RulePrintingWord).Why+": "+q(sig.printer)+s.where(sig.printerMain))
		default:
			add(RulePrinterWord, s.scaled(rs.spec(RulePrinterWord).Points, sig.printerMain),
				rs.spec(RulePrinterWord).Why+": "+q(sig.printer)+s.where(sig.printerMain))
		}
	}
	groupsCounted := 0
	for gi, g := range rs.groups {
		gs := &sig.groups[gi]
		if !gs.found {
			continue
		}
		if g.Needs == "brand" && !brandCounted || g.Needs == "printer" && !brandCounted && sig.printer == "" {
			continue
		}
		groupsCounted++
		detail := g.Group + " vocabulary: " + q(gs.word)
		points := s.scaled(g.Points, gs.inMain)
		if gs.typoOf != "" {
			detail = g.Group + " vocabulary: " + q(gs.typoOf) + " reads as " + q(gs.word) + " (" + rs.spec(RuleKeywordTypo).Why + ")"
			points += rs.spec(RuleKeywordTypo).Points
		}
		add("keyword:"+g.Group, points, detail+s.where(gs.inMain))
	}
	if extra := len(sig.keywords) - groupsCounted; groupsCounted > 0 && extra > 0 {
		spec := rs.spec(RuleExtraKeyword)
		p := extra * spec.Points
		if spec.Max > 0 && p > spec.Max {
			p = spec.Max
		}
		if p > 0 {
			add(RuleExtraKeyword, p, spec.Why+": "+strings.Join(sig.keywords, ", "))
		}
	}
	// Not next to a misspelled brand: the trade word may be the misspelling's letters
	// ("lexmartk" holds "mart").
	misspelled := best >= 0 && sig.brands[best].level > levelNone && sig.brands[best].level != levelToken && sig.brands[best].level != levelLabel
	if spec, ok := rs.Source.Rules[RuleTradeWord]; ok && sig.trade != "" && groupsCounted == 0 && !misspelled {
		add(RuleTradeWord, spec.Points, spec.Why+": "+q(sig.trade))
	}
	s.structure(add)
	for _, p := range rs.patterns {
		if hasAll(n.ASCII, p.needs) && p.re.MatchString(n.ASCII) {
			add("pattern:"+p.name, p.points, p.why)
		}
	}
	if r.Score > 100 {
		r.Score = 100
	}
	if r.Score < 0 {
		r.Score = 0
	}
	if spec, ok := rs.Source.Rules[RuleRestrictedRegistry]; ok && r.Score >= rs.Alert && s.institutionSuffix() {
		add(RuleRestrictedRegistry, rs.Alert-1-r.Score, spec.Why+": "+q(n.Suffix))
	}
	switch {
	case r.Score >= rs.Alert:
		r.Verdict = VerdictAlert
	case r.Score >= rs.Watch:
		r.Verdict = VerdictWatch
	}
}

func hasAll(s string, needs []byte) bool {
	for _, c := range needs {
		if strings.IndexByte(s, c) < 0 {
			return false
		}
	}
	return true
}

// structure adds the shape rules: TLD, hosting platform, hyphens and digits of the scored label.
func (s *Scorer) structure(add func(string, int, string)) {
	rs := s.rs
	n := &s.name
	tld := n.Labels[len(n.Labels)-1]
	if rs.abused[tld] {
		add(RuleAbusedTLD, rs.spec(RuleAbusedTLD).Points, rs.spec(RuleAbusedTLD).Why+": ."+tld)
	}
	if n.Platform != "" {
		add(RuleFreeHosting, rs.spec(RuleFreeHosting).Points, fmt.Sprintf("%s: %s", rs.spec(RuleFreeHosting).Why, n.Platform))
	}
	main := n.Text[n.Main]
	if spec := rs.spec(RuleManyHyphens); spec.Points > 0 {
		if h := strings.Count(main, "-"); h >= max(spec.Min, 1) {
			add(RuleManyHyphens, spec.Points, fmt.Sprintf("%s: %d in %q", spec.Why, h, main))
		}
	}
	if spec := rs.spec(RuleManyDigits); spec.Points > 0 {
		d := 0
		for i := 0; i < len(main); i++ {
			if isDigit(main[i]) {
				d++
			}
		}
		if d >= max(spec.Min, 1) {
			add(RuleManyDigits, spec.Points, fmt.Sprintf("%s: %d in %q", spec.Why, d, main))
		}
	}
}

func levelRule(level int) string {
	switch level {
	case levelTypo:
		return RuleBrandTypo
	case levelHomoglyph:
		return RuleBrandHomoglyph
	case levelLabel:
		return RuleBrandLabel
	}
	return RuleBrandToken
}

func (s *Scorer) brandPoints(b *brandSig) int {
	if b.level == levelNone {
		return 0
	}
	if b.level == levelLabel {
		return s.rs.spec(s.labelRule()).Points // the name is exactly the brand: a subdomain does not weaken it
	}
	p := s.rs.spec(levelRule(b.level)).Points
	return s.scaled(p, b.inMain)
}

func (s *Scorer) productPoints(b *brandSig) int {
	if !b.prodOK {
		return 0
	}
	if b.prodTypo != "" {
		return s.scaled(s.rs.spec(RuleProductTypo).Points, b.prodMain)
	}
	return s.scaled(s.rs.spec(RuleProductLine).Points, b.prodMain)
}

// scaled applies the subdomain factor to points earned outside the registrable label: internal
// host names ("hp-printer.office.example.com") are common in CT and rarely scams.
func (s *Scorer) scaled(points int, inMain bool) int {
	if inMain {
		return points
	}
	f := s.rs.spec(RuleSubdomainOnly).Factor
	return int(float64(points)*f + 0.5)
}

func (s *Scorer) where(inMain bool) string {
	if inMain {
		return ""
	}
	return fmt.Sprintf(" (in a subdomain label: points x%g)", s.rs.spec(RuleSubdomainOnly).Factor)
}

func (s *Scorer) brandDetail(b *brandSig, br *brand) string {
	switch b.level {
	case levelTypo:
		return q(b.text) + " reads as " + q(b.token) + " (" + b.edit + ", " + br.name + ")"
	case levelHomoglyph:
		shown := b.text
		if s.name.Unicode != "" {
			shown = s.name.Unicode
		}
		return fmt.Sprintf("%q reads as %q (%s, %s)", shown, b.token, b.edit, br.name)
	case levelLabel:
		return fmt.Sprintf("%q under .%s (%s)", b.text, s.name.Suffix, br.name)
	}
	return q(b.text) + " (" + br.name + ")"
}

// q quotes a token for a reason. Tokens come from normalized labels (a-z, 0-9, '-', '~'), so
// there is nothing to escape and no need for fmt on this path.
func q(s string) string { return "\"" + s + "\"" }

// embeddedDomain finds one of the brand's own domains inside a name it does not own
// ("support-hp.com.setup-fix.net", "hp.com-support.help"), or a token pair like "hp"+"com".
func (s *Scorer) embeddedDomain(bi int, b *brandSig) string {
	name := s.name.ASCII
	for _, d := range s.rs.brands[bi].owned {
		if strings.IndexByte(d, '.') < 0 {
			continue
		}
		for off := 0; ; {
			i := strings.Index(name[off:], d)
			if i < 0 {
				break
			}
			p := off + i
			end := p + len(d)
			if (p == 0 || name[p-1] == '.' || name[p-1] == '-') && end < len(name) && (name[end] == '.' || name[end] == '-') {
				return d
			}
			off = p + 1
		}
	}
	return b.embedded
}

// keywordTypos reads unplaced runs as misspelled keywords ("suport", "stup") once the name has
// a brand or printer signal.
func (s *Scorer) keywordTypos() {
	for _, f := range s.frags {
		if ki := s.rs.keywordTypo(f.text); ki >= 0 {
			ft := &s.rs.fuzzyKeywords[ki]
			s.noteKeyword(ft.id, ft.s, f.text, f.inMain)
		} else if f.borrowS && len(f.text) < maxFuzzyLen {
			s.buf = append(append(s.buf[:0], 's'), f.text...)
			if ki := s.rs.keywordTypo(string(s.buf)); ki >= 0 {
				ft := &s.rs.fuzzyKeywords[ki]
				s.noteKeyword(ft.id, ft.s, "s"+f.text, f.inMain)
			}
		}
	}
}

// keywordTypo returns the index of the fuzzy keyword w misspells (one edit), or -1.
func (rs *RuleSet) keywordTypo(w string) int {
	if len(w) < 4 {
		return -1
	}
	return oneEdit(rs.fuzzyKeywords, w)
}

// oneEdit returns the index of the target w misspells by exactly one edit, or -1.
func oneEdit(targets []fuzzyTarget, w string) int {
	mask := letterMask(w)
	for i := range targets {
		ft := &targets[i]
		if d := len(w) - len(ft.s); d < -1 || d > 1 || popcount(ft.mask&^mask) > 1 {
			continue
		}
		if boundedOSA(w, ft.s, 1) == 1 {
			return i
		}
	}
	return -1
}

// misspelledSignals reads unplaced runs as a misspelled printer word ("printr") or product
// ("offcejet") when the name spells none right: names that hide the brand's product or the
// printer behind one typo. The runs are only those of labels that had a meaningful word.
func (s *Scorer) misspelledSignals() {
	sig := &s.sig
	if len(s.frags) == 0 {
		return
	}
	needProduct := true
	for _, bi := range sig.touched {
		if sig.brands[bi].product != "" {
			needProduct = false
		}
	}
	for _, f := range s.frags {
		if len(f.text) < 5 || len(f.text) > maxFuzzyLen {
			continue
		}
		if sig.printer == "" {
			if i := oneEdit(s.rs.fuzzyPrinter, f.text); i >= 0 {
				sig.printer, sig.printerMain, sig.printerTypo = s.rs.fuzzyPrinter[i].s, f.inMain, f.text
				continue
			}
		}
		if needProduct {
			if i := oneEdit(s.rs.fuzzyProducts, f.text); i >= 0 {
				ft := &s.rs.fuzzyProducts[i]
				b := s.brandSig(ft.id)
				b.product, b.prodMain, b.prodTypo = ft.s, f.inMain, f.text
				needProduct = false
			}
		}
	}
}

// institutionLabels mark a public suffix of a restricted registry: governments, schools,
// universities, armed forces ("gov.in", "gob.mx", "ac.uk", "go.jp", "gv.at").
var institutionLabels = map[string]bool{"gov": true, "gob": true, "govt": true, "gouv": true, "go": true, "gv": true,
	"edu": true, "ac": true, "mil": true, "nic": true, "int": true, "police": true}

// genericCountryTLDs are country codes sold and used as generic names (and the free ones scam
// sites favour): a brand alone under one is not a country site.
var genericCountryTLDs = map[string]bool{"co": true, "io": true, "me": true, "tv": true, "cc": true, "ws": true, "ai": true,
	"la": true, "to": true, "fm": true, "ly": true, "gg": true, "sh": true, "nu": true, "tk": true, "ml": true, "ga": true,
	"cf": true, "gq": true, "pw": true, "su": true, "cx": true, "vc": true, "am": true, "im": true, "ps": true}

// institutionSuffix says whether the name's public suffix is a restricted registry's.
func (s *Scorer) institutionSuffix() bool {
	return slices.ContainsFunc(strings.Split(s.name.Suffix, "."), func(l string) bool { return institutionLabels[l] })
}

// labelRule is the rule for a name that is exactly a brand, by where it sits: under a
// restricted registry's suffix, under a country's, or anywhere else. A rule file without the
// first two keeps scoring them as brand-label.
func (s *Scorer) labelRule() string {
	suffix := strings.Split(s.name.Suffix, ".")
	last := suffix[len(suffix)-1]
	rule := RuleBrandLabel
	switch {
	case s.institutionSuffix():
		rule = RuleBrandLabelInstitution
	case len(last) == 2 && !genericCountryTLDs[last]:
		rule = RuleBrandLabelCountry
	}
	if _, ok := s.rs.Source.Rules[rule]; !ok {
		return RuleBrandLabel
	}
	return rule
}
