package capture

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"image/png"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/capture/capturetest"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/netguard"
	"github.com/helpwatch/helpwatch/watcher/site"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/store/storetest"
	"github.com/helpwatch/helpwatch/watcher/testkit"
)

func cloakingSite(t testing.TB) *httptest.Server {
	kit, err := os.ReadFile(filepath.Join("..", "..", "testdata", "site", "helpline.html"))
	if err != nil {
		t.Fatal(err)
	}
	return capturetest.CloakingSite(t, kit)
}

func loopbackGuard(t testing.TB) *netguard.Guard {
	g := &netguard.Guard{}
	if err := g.AllowHost("127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	return g
}

// A capture poses as each profile: the cloaked kit is seen by the phone from search only, the
// screenshot carries its band, every artefact's name is its hash, the serving network is
// found in the registry's RDAP, and the store keeps it all as it was made.
func TestCaptureSeesCloakingAndKeepsEvidence(t *testing.T) {
	testkit.NeedBrowser(t)
	srv := cloakingSite(t)
	name := strings.TrimPrefix(srv.URL, "http://")
	guard := loopbackGuard(t)
	boot, _ := capturetest.HostingRDAP(t)
	clock := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	c := &Capturer{
		Rules:    testkit.DefaultRules(t),
		Fetcher:  &site.Fetcher{Guard: guard, Timeout: 5 * time.Second},
		Renderer: &site.Renderer{Timeout: 60 * time.Second},
		Hosting:  &enrich.Hosting{Bootstraps: []string{boot}, Guard: guard},
		Now:      func() time.Time { return clock },
	}
	got, arts := c.Capture(context.Background(), name)
	if len(got.Shots) != 2 {
		t.Fatalf("%d shots, want one per profile", len(got.Shots))
	}
	desktop, mobile := got.Shots[0], got.Shots[1]
	if desktop.Verdict.Flagged() || !desktop.Blank {
		t.Errorf("desktop saw %s (blank %v), want the blank page", desktop.Verdict, desktop.Blank)
	}
	if !mobile.Verdict.Flagged() || len(mobile.Phones) == 0 || !strings.Contains(strings.Join(mobile.AsksFor, ","), "remote access") {
		t.Errorf("the phone from search saw %s phones %v asks %v, want the helpline kit asking for remote access", mobile.Verdict, mobile.Phones, mobile.AsksFor)
	}
	if !got.Cloaked || !strings.Contains(got.Cloaking, "mobile-from-search") || !strings.Contains(got.Cloaking, "desktop got a blank page") {
		t.Errorf("cloaking not seen: %v %q", got.Cloaked, got.Cloaking)
	}
	if !got.Observed() || got.FlaggedShot().Profile != "mobile-from-search" {
		t.Errorf("the capture does not show the abuse: %s", got.Verdict)
	}
	if mobile.Address != "127.0.0.1" || mobile.Status != 200 || mobile.Headers["Server"][0] != "kit/1.0" {
		t.Errorf("served from %q status %d headers %v", mobile.Address, mobile.Status, mobile.Headers)
	}
	if h := got.Hosting; h == nil || h.State != watcher.Found || h.AbuseEmail != "abuse@hosting.example" || h.Country != "DE" || h.Org != "Loopback Hosting GmbH" {
		t.Errorf("hosting %+v", got.Hosting)
	}
	byHash := map[string]Artefact{}
	for _, a := range arts {
		sum := sha256.Sum256(a.Data)
		if hex.EncodeToString(sum[:]) != a.SHA256 {
			t.Errorf("artefact %s is named by another hash", a.SHA256)
		}
		byHash[a.SHA256] = a
	}
	// The browser was shown what the fetch was: the page it built for the phone is the kit.
	for _, s := range got.Shots {
		built := byHash[s.RenderedHTML]
		if shown := bytes.Contains(built.Data, []byte("740-2391")); shown != (s.Profile == "mobile-from-search") {
			t.Errorf("%s: the browser was shown the kit: %v", s.Profile, shown)
		}
	}
	for _, s := range got.Shots {
		if s.Screenshot == "" || s.HTML == "" {
			t.Fatalf("%s: screenshot %q html %q (error %q)", s.Profile, s.Screenshot, s.HTML, s.Error)
		}
		shot, ok := byHash[s.Screenshot]
		if !ok || shot.MediaType != "image/png" {
			t.Fatalf("%s: the screenshot is not among the artefacts", s.Profile)
		}
		img, err := png.Decode(bytes.NewReader(shot.Data))
		if err != nil {
			t.Fatalf("%s: the screenshot does not decode: %v", s.Profile, err)
		}
		band := BandHeight(2)
		if img.Bounds().Dy() <= band {
			t.Fatalf("%s: %d pixels tall, the band alone is %d", s.Profile, img.Bounds().Dy(), band)
		}
		// The band is there: its background at the corner, and text drawn on it.
		if r, g, b, _ := img.At(1, 1).RGBA(); r>>8 != uint32(bandBackground.R) || g>>8 != uint32(bandBackground.G) || b>>8 != uint32(bandBackground.B) {
			t.Errorf("%s: no band at the top", s.Profile)
		}
		text := 0
		for y := 0; y < band; y++ {
			for x := 0; x < img.Bounds().Dx(); x++ {
				if r, g, b, _ := img.At(x, y).RGBA(); r>>8 == uint32(bandText.R) && g>>8 == uint32(bandText.G) && b>>8 == uint32(bandText.B) {
					text++
				}
			}
		}
		if text < 200 {
			t.Errorf("%s: the band holds %d text pixels: nothing written", s.Profile, text)
		}
	}

	db, err := store.Open(context.Background(), storetest.Where(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	kept := make([]store.Artefact, len(arts))
	for i, a := range arts {
		kept[i] = store.Artefact{SHA256: a.SHA256, MediaType: a.MediaType, Data: a.Data}
	}
	got.CaseID = 7
	if err := db.SaveCapture(context.Background(), nil, got, kept); err != nil {
		t.Fatal(err)
	}
	back, err := db.Captures(context.Background(), 7)
	if err != nil || len(back) != 1 || !back[0].Cloaked || back[0].Shots[1].Screenshot != mobile.Screenshot {
		t.Fatalf("stored capture: %v %+v", err, back)
	}
	for _, a := range arts {
		stored, ok, err := db.Artefact(context.Background(), a.SHA256)
		if err != nil || !ok || !bytes.Equal(stored.Data, a.Data) || stored.MediaType != a.MediaType {
			t.Errorf("artefact %s: ok %v err %v", a.SHA256, ok, err)
		}
	}
}

// The store keeps a case's evidence within its budget, keeping the small artefacts first, and
// purges what is past the retention and cited by no report.
func TestEvidenceBudgetAndRetention(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	db, err := store.Open(context.Background(), storetest.Where(t), store.Options{EvidencePerCase: 1000, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	small, big := artefact("text/html", bytes.Repeat([]byte("a"), 300)), artefact("image/png", bytes.Repeat([]byte("b"), 900))
	c := &watcher.Capture{CaseID: 1, Name: "a.example", At: now.Add(-200 * 24 * time.Hour), Verdict: rules.SiteHelpline}
	if err := db.SaveCapture(context.Background(), nil, c, []store.Artefact{{SHA256: big.SHA256, MediaType: big.MediaType, Data: big.Data},
		{SHA256: small.SHA256, MediaType: small.MediaType, Data: small.Data}}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := db.Artefact(context.Background(), small.SHA256); !ok {
		t.Error("the small artefact was not kept")
	}
	if _, ok, _ := db.Artefact(context.Background(), big.SHA256); ok {
		t.Error("the artefact past the budget was kept")
	}
	back, _ := db.Captures(context.Background(), 1)
	if len(back) != 1 || len(back[0].Dropped) != 1 || !strings.Contains(back[0].Dropped[0], big.SHA256) {
		t.Errorf("the dropped artefact is not named: %+v", back)
	}
	n, freed, err := db.PurgeEvidence(context.Background(), now.Add(-DefaultRetention))
	if err != nil || n != 1 || freed != 300 {
		t.Fatalf("purge: %d captures, %d bytes, %v", n, freed, err)
	}
	if _, ok, _ := db.Artefact(context.Background(), small.SHA256); ok {
		t.Error("an artefact no capture names survived the purge")
	}
}
