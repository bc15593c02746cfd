package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

func sighting(name, brand string, v rules.Verdict, score int, at time.Time, fp string) Sighting {
	return Sighting{
		Result: rules.Result{Domain: name, Registrable: name, Brand: brand, Score: score, Verdict: v, RulesVersion: "test-1",
			Reasons: []rules.Reason{{Rule: "brand", Points: score, Detail: "contains " + brand}}},
		At: at, CTSeen: at.Add(-time.Minute),
		Cert: watcher.Certificate{LogURL: "log.test/", Index: 7, Issuer: "Let's Encrypt R3", Fingerprint: fp,
			NotBefore: time.Unix(1700000000, 0).UTC()},
	}
}

func openTemp(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "h.db")
	s, err := OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestSaveDedupesAndCountsCertificatesOnce(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	batch := []Sighting{
		sighting("hp-setup.com", "hp", rules.VerdictAlert, 80, t0, "AA"),
		sighting("canon-help.net", "canon", rules.VerdictWatch, 40, t0, "BB"),
	}
	created, err := s.Save(ctx, batch, Counts{Messages: 2, Names: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 2 || created[0].Domain != "hp-setup.com" || created[0].CertCount != 1 {
		t.Fatalf("created %+v", created)
	}
	// The same batch again (a replay after a restart) creates and counts nothing.
	if created, err = s.Save(ctx, batch, Counts{}); err != nil || len(created) != 0 {
		t.Fatalf("resave created %d, err %v", len(created), err)
	}
	// A later, different certificate for a known name: last_seen and count move, the first
	// score and certificate stay.
	later := sighting("hp-setup.com", "hp", rules.VerdictWatch, 36, t0.Add(time.Hour), "CC")
	if created, err = s.Save(ctx, []Sighting{later}, Counts{}); err != nil || len(created) != 0 {
		t.Fatalf("later sighting created %d, err %v", len(created), err)
	}
	s.Close()

	s2, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.Findings(ctx, Query{Name: "hp-setup.com"})
	if err != nil || len(got) != 1 {
		t.Fatalf("findings %v %v", got, err)
	}
	f := got[0]
	if f.CertCount != 2 || !f.FirstSeen.Equal(t0) || !f.LastSeen.Equal(t0.Add(time.Hour)) || f.Score != 80 ||
		f.Verdict != rules.VerdictAlert || f.Cert.Fingerprint != "AA" || f.Reasons[0].Detail != "contains hp" ||
		!f.Cert.NotBefore.Equal(time.Unix(1700000000, 0)) || f.RulesVersion != "test-1" || !f.CTSeen.Equal(t0.Add(-time.Minute)) {
		t.Errorf("stored finding %+v", f)
	}
	days, err := s2.DailyCounts(ctx)
	if err != nil || len(days) != 1 || days[0].Messages != 2 || days[0].Names != 3 || days[0].Findings != 2 {
		t.Errorf("daily counts %+v %v", days, err)
	}
}

func TestFindingsFilters(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	_, err := s.Save(ctx, []Sighting{
		sighting("old-hp.com", "hp", rules.VerdictAlert, 90, now.Add(-48*time.Hour), "1"),
		sighting("new-hp.com", "hp", rules.VerdictAlert, 90, now.Add(-time.Hour), "2"),
		sighting("new-canon.com", "canon", rules.VerdictWatch, 40, now.Add(-time.Minute), "3"),
	}, Counts{})
	if err != nil {
		t.Fatal(err)
	}
	names := func(q Query) string {
		fs, err := s.Findings(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fs {
			out = append(out, f.Domain)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		q    Query
		want string
	}{
		{Query{}, "new-canon.com new-hp.com old-hp.com"},
		{Query{Since: now.Add(-24 * time.Hour)}, "new-canon.com new-hp.com"},
		{Query{Verdict: rules.VerdictAlert}, "new-hp.com old-hp.com"},
		{Query{MinVerdict: rules.VerdictWatch, Brand: "HP"}, "new-hp.com old-hp.com"},
		{Query{Brand: "canon"}, "new-canon.com"},
		{Query{Limit: 1}, "new-canon.com"},
	} {
		if got := names(tc.q); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.q, got, tc.want)
		}
	}
}

func TestOpenRejectsNewerSchemaAndNonDatabases(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if _, err := s.db.Exec(`INSERT INTO schema_migrations(version, applied_at) VALUES (99, 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenSQLite(ctx, path); err == nil || !strings.Contains(err.Error(), "newer") || !strings.Contains(err.Error(), path) {
		t.Errorf("newer schema: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(junk, []byte(strings.Repeat("this is not sqlite\n", 100)), 0o644)
	if _, err := OpenSQLite(ctx, junk); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("junk file: %v", err)
	}
}

func TestSeenUp(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	if _, err := s.Save(ctx, []Sighting{sighting("a.test", "hp", rules.VerdictAlert, 80, t0, "A"), sighting("b.test", "hp", rules.VerdictAlert, 80, t0, "B"),
		sighting("c.test", "hp", rules.VerdictAlert, 80, t0, "C"), sighting("d.test", "hp", rules.VerdictAlert, 80, t0, "D")}, Counts{}); err != nil {
		t.Fatal(err)
	}
	r := rules.Result{Domain: "a.test"}
	// a: enriched with an address. b: enriched, no address. c: a live check. d: nothing.
	if err := s.SaveEnrichment(ctx, &watcher.Enrichment{Name: "a.test", At: t0, DNS: watcher.DNSFacts{State: watcher.Found, A: []string{"192.0.2.1"}}}, &r); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveEnrichment(ctx, &watcher.Enrichment{Name: "b.test", At: t0, DNS: watcher.DNSFacts{State: watcher.NotFound}}, &r); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordCheck(ctx, Check{Name: "c.test", At: t0, State: StateLive}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"a.test": true, "b.test": false, "c.test": true, "d.test": false, "unknown.test": false} {
		if got, err := s.SeenUp(ctx, name); err != nil || got != want {
			t.Errorf("SeenUp(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
}

// SQLite's own "database or disk is full" (here from a page limit) is said as a full disk,
// naming the file, and the batch is not half-stored.
func TestDiskFullIsSaidAsSuch(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	var pages int
	if err := s.db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+1)); err != nil {
		t.Fatal(err)
	}
	var batch []Sighting
	for i := 0; i < 2000; i++ {
		batch = append(batch, sighting(fmt.Sprintf("hp-setup-%d.com", i), "hp", rules.VerdictAlert, 80, time.Now(), fmt.Sprint(i)))
	}
	_, err := s.Save(ctx, batch, Counts{})
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "safe") {
		t.Fatalf("full: %v", err)
	}
	if fs, _ := s.Findings(ctx, Query{}); len(fs) != 0 {
		t.Errorf("%d findings stored from a failed batch", len(fs))
	}
}

// A damaged file is found by QuickCheck, named, and told apart from other errors.
func TestQuickCheckFindsCorruption(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	var batch []Sighting
	for i := 0; i < 3000; i++ {
		batch = append(batch, sighting(fmt.Sprintf("hp-setup-%d.com", i), "hp", rules.VerdictAlert, 80, time.Now(), fmt.Sprint(i)))
	}
	if _, err := s.Save(ctx, batch, Counts{}); err != nil {
		t.Fatal(err)
	}
	if err := s.QuickCheck(ctx); err != nil {
		t.Fatalf("sound file: %v", err)
	}
	s.Close()
	corrupt(t, path)
	s2, err := OpenSQLite(ctx, path)
	if err == nil {
		defer s2.Close()
		err = s2.QuickCheck(ctx)
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("damaged file: %v", err)
	}
}

// corrupt overwrites pages in the middle of a database file with garbage.
func corrupt(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Size() < 16*4096 {
		t.Fatalf("database too small to damage: %d bytes", st.Size())
	}
	garbage := make([]byte, 8*4096)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	if _, err := f.WriteAt(garbage, 4*4096); err != nil {
		t.Fatal(err)
	}
}
