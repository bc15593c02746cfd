package store

import (
	"context"
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
