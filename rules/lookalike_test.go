package rules

import (
	"slices"
	"testing"
)

// The generator makes each kind's candidates, never a brand-owned domain, each once, within
// its bound; the candidates a scammer registers score as suspicious.
func TestLookAlikes(t *testing.T) {
	rs, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	got, counts := rs.LookAlikes(LookAlikeOptions{Brands: []string{"Canon", "Lexmark", "Brother"}, TLDs: []string{"com"}})
	domains := map[string]string{}
	for _, c := range got {
		if _, dup := domains[c.Domain]; dup {
			t.Errorf("%s twice", c.Domain)
		}
		domains[c.Domain] = c.Kind
	}
	for d, kind := range map[string]string{"lexmrk.com": LookOmission, "brotther.com": LookRepetition, "cnaon.com": LookTransposition,
		"can0n.com": LookHomoglyph, "ca-non.com": LookHyphenation, "canonprintersupport.com": LookHelpline} {
		if domains[d] != kind {
			t.Errorf("%s: kind %q, want %q", d, domains[d], kind)
		}
	}
	if _, owned := domains["canon.com"]; owned {
		t.Error("the brand's own domain is a candidate")
	}
	if _, kept := domains["cann.com"]; kept {
		t.Error("a candidate the rules would not keep (cann.com) is made")
	}
	for _, k := range LookAlikeKinds {
		if k != LookTLDSwap && k != LookVowelSwap && counts[k] == 0 {
			t.Errorf("no %s candidates", k)
		}
	}
	few, _ := rs.LookAlikes(LookAlikeOptions{Max: 60})
	brands := map[string]bool{}
	for _, c := range few {
		brands[c.Brand] = true
	}
	if len(few) != 60 || len(brands) < 20 {
		t.Errorf("Max 60 gave %d names of %d brands (a bound must leave every brand some)", len(few), len(brands))
	}
	only, _ := rs.LookAlikes(LookAlikeOptions{Brands: []string{"epson"}, Kinds: []string{LookHelpline}, TLDs: []string{"online"}})
	if len(only) == 0 || !slices.ContainsFunc(only, func(c LookAlike) bool { return c.Domain == "epsonsupport.online" }) {
		t.Errorf("helpline candidates for Epson: %d", len(only))
	}
	// What a scammer would register from these scores as a case.
	s := rs.NewScorer()
	for _, d := range []string{"canonprintersupport.com", "can0n.com", "cnaon.com"} {
		if r := s.Score(d); r.Verdict.Rank() < VerdictWatch.Rank() {
			t.Errorf("%s scores %s", d, r.Verdict)
		}
	}
}
