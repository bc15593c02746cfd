package site

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "site", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNormalizeHTMLBlanksAttributes(t *testing.T) {
	got := string(NormalizeHTML([]byte(`<a href="tel:+18885550100" class="btn">Call   now</a><img src="logo.png">`)))
	if got != `<html><head><body><a class="" href="">Call now </a><img src=""></body></html>` {
		t.Errorf("normalized %q", got)
	}
}

func TestKitSimilaritySurvivesNewNumbersAndNames(t *testing.T) {
	kit := fixture(t, "clone.html")
	lib := &Library{}
	kp := ExtractHTML(kit, nil)
	lib.Add(NewFingerprint("hp-setup-kit", "kit", "HP", kp.Markup, kp.Text))
	// The same kit redeployed: new phone, new image names, a reworded heading.
	variant := []byte(strings.NewReplacer("215-7421", "410-3302", "logo.png", "brand-2.png",
		"Set up your HP printer", "Setup your HP printer now").Replace(string(kit)))
	vp := ExtractHTML(variant, nil)
	fp := NewFingerprint("variant", "", "", vp.Markup, vp.Text)
	best, sim := lib.Closest(fp)
	if best == nil || best.Name != "hp-setup-kit" || sim < 0.7 {
		t.Errorf("variant: %v %.2f", best, sim)
	}
	other := fixture(t, "benign.html")
	op := ExtractHTML(other, nil)
	if _, sim := lib.Closest(NewFingerprint("bakery", "", "", op.Markup, op.Text)); sim >= 0.5 {
		t.Errorf("an unrelated page is %.2f similar", sim)
	}
	// The library round-trips through its file.
	path := filepath.Join(t.TempDir(), "refs.json")
	if err := lib.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadLibrary(path)
	if err != nil || len(back.Fingerprints) != 1 {
		t.Fatal(back, err)
	}
	if _, sim2 := back.Closest(fp); sim2 != sim {
		t.Errorf("similarity after reload %.3f, before %.3f", sim2, sim)
	}
	// Scored: the variant is a clone because of the kit, and says so.
	rep := Analyze(ruleSet(t), back, "hp-printer-assist.com", variant, true, nil)
	if rep.Verdict != "clone" || !strings.Contains(rep.Similar, "hp-setup-kit") {
		t.Errorf("variant scored %s, similar %q", rep.Verdict, rep.Similar)
	}
	if _, err := LoadLibrary(filepath.Join(t.TempDir(), "missing.json")); err != nil {
		t.Errorf("a missing library is empty, not an error: %v", err)
	}
}

// A copy of a brand's genuine page (a reference) on someone else's domain is a clone; the
// brand's own domain serving it is not.
func TestReferenceCopies(t *testing.T) {
	genuine := []byte(`<html><head><title>HP Smart printer setup</title></head><body><h1>Set up your HP printer</h1>
		<p>Enter your product name and model number to get the right software and drivers for your printer.</p>
		<p>Download HP Smart to finish setting up your printer on your network and start printing.</p></body></html>`)
	gp := ExtractHTML(genuine, nil)
	lib := &Library{}
	lib.Add(NewFingerprint("123.hp.com setup", "reference", "HP", gp.Markup, gp.Text))
	rs := ruleSet(t)
	if rep := Analyze(rs, lib, "hp-setup-printers.net", genuine, true, nil); rep.Verdict != "clone" || rep.Similar == "" {
		t.Errorf("copy on another domain: %s %q %v", rep.Verdict, rep.Similar, rep.Reasons)
	}
	if rep := Analyze(rs, lib, "123.hp.com", genuine, true, nil); rep.Verdict != "benign" {
		t.Errorf("the brand's own page: %s", rep.Verdict)
	}
}
