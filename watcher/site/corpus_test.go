package site

import (
	"os"
	"path/filepath"
	"testing"
)

// Saved kits are judged page by page, or as sites: the landing page of a kit that alone
// reads as nothing counts as found when its site (the pages sharing the first name parts)
// is a helpline.
func TestJudgeCorpusAsSites(t *testing.T) {
	rs := ruleSet(t)
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("owner__kit__index.html", `<html><head><title>Printer setup</title></head><body><h1>HP printer setup</h1><p>Set up your HP printer in minutes.</p></body></html>`)
	write("owner__kit__contact.html", `<html><body><p>HP printer offline? Talk to certified technicians now. Call toll free <a href="tel:+18882157421">+1 (888) 215-7421</a>. HP printer support, 24/7 helpline.</p></body></html>`)
	files, err := PageFiles([]string{dir})
	if err != nil || len(files) != 2 {
		t.Fatalf("files %v, %v", files, err)
	}
	alone := JudgeCorpus(rs, nil, files, CorpusOptions{})
	if alone.Flagged != 1 {
		t.Fatalf("page by page: %d of 2 flagged (%+v); the test needs exactly the contact page", alone.Flagged, alone.Files)
	}
	asSites := JudgeCorpus(rs, nil, files, CorpusOptions{SiteSep: "__", SiteDepth: 2})
	if asSites.Flagged != 2 || asSites.Rate() != 1 {
		t.Errorf("as a site: %d of 2 flagged: %+v", asSites.Flagged, asSites.Files)
	}
	if _, _, err := ReadSaved(dir); err == nil {
		t.Error("a folder read as a page")
	}
}
