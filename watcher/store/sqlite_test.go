package store

import (
	"context"
	"errors"
	"fmt"
	"github.com/helpwatch/helpwatch/watcher/testkit"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

var defaultRules = testkit.DefaultRules

// sighting is a name scored with the default rules, seen at at, with a certificate whose
// fingerprint is fp (none when empty).
func sighting(t testing.TB, name string, at time.Time, fp string) Sighting {
	t.Helper()
	r := defaultRules(t).NewScorer().Score(name)
	cert := watcher.Certificate{LogURL: "https://log.test/", Index: -1, Issuer: "Let's Encrypt R3", Fingerprint: fp,
		NotBefore: time.Unix(1700000000, 0).UTC()}
	return Sighting{Result: r, At: at, CTSeen: at.Add(-time.Minute), Cert: cert}
}

func caseOf(t testing.TB, s *SQL, registrable string) *watcher.Case {
	t.Helper()
	c, ok, err := s.Case(context.Background(), registrable)
	if err != nil || !ok {
		t.Fatalf("case %s: %v %v", registrable, ok, err)
	}
	return c
}

// Spellings of one name are one name; names of one registrable domain are one case; the same
// batch twice counts nothing twice; a certificate listing two names of a case counts once for
// the case.
func TestSaveMakesCasesFromCanonicalNames(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	batch := []Sighting{
		sighting(t, "hp-printer-setup-help.com", t0, "AA"),
		sighting(t, "www.hp-printer-setup-help.com", t0, "AA"), // the same certificate lists both
		sighting(t, "canon-printer-support.net", t0, "BB"),
	}
	created, err := s.Save(ctx, batch, Counts{Messages: 2, Names: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 2 || created[0].Registrable != "hp-printer-setup-help.com" || len(created[0].Names) != 2 || created[0].CertCount != 1 ||
		created[0].Score.Verdict != rules.VerdictAlert || created[0].Score.RulesVersion == "" {
		t.Fatalf("created %+v", created)
	}
	// The same batch again (a replay after a restart) creates and counts nothing.
	if created, err = s.Save(ctx, batch, Counts{}); err != nil || len(created) != 0 {
		t.Fatalf("resave created %d, err %v", len(created), err)
	}
	// Other spellings of known names: upper case, trailing dot, wildcard. Nothing new; the
	// wildcard is kept as a flag; a new certificate counts.
	later := t0.Add(time.Hour)
	for _, spelling := range []string{"HP-PRINTER-SETUP-HELP.COM", "hp-printer-setup-help.com.", "*.hp-printer-setup-help.com"} {
		created, err := s.Save(ctx, []Sighting{sighting(t, spelling, later, "CC")}, Counts{})
		if err != nil || len(created) != 0 {
			t.Fatalf("%s created %d, err %v", spelling, len(created), err)
		}
	}
	s.Close()

	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	c := caseOf(t, s2, "hp-printer-setup-help.com")
	if len(c.Names) != 2 || c.CertCount != 2 || !c.FirstSeen.Equal(t0) || !c.LastSeen.Equal(later) || !c.CTSeen.Equal(t0.Add(-time.Minute)) ||
		c.Cert.Fingerprint != "AA" || c.Brand != "HP" {
		t.Errorf("stored case %+v", c)
	}
	var apex watcher.CaseName
	for _, n := range c.Names {
		if n.Name == "hp-printer-setup-help.com" {
			apex = n
		}
	}
	if !apex.Wildcard || apex.CertCount != 2 || !apex.LastSeen.Equal(later) || apex.Score.Domain != "hp-printer-setup-help.com" {
		t.Errorf("apex name %+v", apex)
	}
	all, _ := s2.Cases(ctx, Query{})
	if len(all) != 2 {
		t.Errorf("%d cases, want 2", len(all))
	}
	// Each new case is queued once for enrichment and once for the site check.
	if n, _ := s2.PendingJobs(ctx, []string{KindEnrich}); n != 2 {
		t.Errorf("%d enrichment jobs, want 2", n)
	}
	if n, _ := s2.PendingJobs(ctx, []string{KindSite}); n != 2 {
		t.Errorf("%d site jobs, want 2", n)
	}
	days, err := s2.DailyCounts(ctx)
	if err != nil || len(days) != 1 || days[0].Messages != 2 || days[0].Names != 3 || days[0].Findings != 2 {
		t.Errorf("daily counts %+v %v", days, err)
	}
}

func TestCasesFilters(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	if _, err := s.Save(ctx, []Sighting{
		sighting(t, "hp-printer-support-old.com", now.Add(-48*time.Hour), "1"),
		sighting(t, "hp-printer-support-new.com", now.Add(-time.Hour), "2"),
		sighting(t, "canon-printer.com", now.Add(-time.Minute), "3"),
	}, Counts{}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddLabel(ctx, Label{Registrable: "hp-printer-support-old.com", Label: rules.LabelBenign, By: "jane", At: now}); err != nil {
		t.Fatal(err)
	}
	names := func(q Query) string {
		cs, err := s.Cases(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.Registrable)
		}
		return strings.Join(out, " ")
	}
	canon := caseOf(t, s, "canon-printer.com").Score.Verdict
	for _, tc := range []struct {
		q    Query
		want string
	}{
		{Query{}, "canon-printer.com hp-printer-support-new.com hp-printer-support-old.com"},
		{Query{Since: now.Add(-24 * time.Hour)}, "canon-printer.com hp-printer-support-new.com"},
		{Query{Since: now.Add(-24 * time.Hour), Until: now.Add(-30 * time.Minute)}, "hp-printer-support-new.com"},
		{Query{Verdict: rules.VerdictAlert, Brand: "HP"}, "hp-printer-support-new.com hp-printer-support-old.com"},
		{Query{Brand: "canon"}, "canon-printer.com"},
		{Query{Verdict: canon, Brand: "Canon"}, "canon-printer.com"},
		{Query{Label: "benign"}, "hp-printer-support-old.com"},
		{Query{Label: "none", Brand: "hp"}, "hp-printer-support-new.com"},
		{Query{Limit: 1}, "canon-printer.com"},
		{Query{Registrable: "hp-printer-support-new.com"}, "hp-printer-support-new.com"},
	} {
		if got := names(tc.q); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.q, got, tc.want)
		}
	}
}

func TestOpenRejectsNewerSchemaAndNonDatabases(t *testing.T) {
	sqliteOnly(t, "the file checks")
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

// claimOne claims the single due job of kind (failing the test otherwise).
func claimOne(t testing.TB, s *SQL, kind string) *Job {
	t.Helper()
	jobs, err := s.ClaimJobs(context.Background(), "test-worker", []string{kind}, 1, time.Now(), time.Minute, false)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim %s: %v %v", kind, jobs, err)
	}
	return &jobs[0]
}

func TestSeenUp(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, n := range []string{"hp-a.com", "hp-b.com", "hp-c.com", "hp-d.com"} {
		if _, err := s.Save(ctx, []Sighting{sighting(t, n, t0, n)}, Counts{}); err != nil {
			t.Fatal(err)
		}
	}
	// a: enriched with an address. b: enriched, no address. c: a live check. d: nothing.
	for _, name := range []string{"hp-a.com", "hp-b.com"} {
		job := claimOne(t, s, KindEnrich)
		dns := watcher.DNSFacts{Name: job.Registrable, State: watcher.NotFound}
		if job.Registrable == "hp-a.com" {
			dns = watcher.DNSFacts{Name: job.Registrable, State: watcher.Found, A: []string{"192.0.2.1"}}
		}
		if err := s.SaveEnrichment(ctx, job, &watcher.Enrichment{Registrable: job.Registrable, At: t0, DNS: []watcher.DNSFacts{dns}}); err != nil {
			t.Fatal(name, err)
		}
	}
	if err := s.RecordCheck(ctx, Check{Name: "hp-c.com", At: t0, State: StateLive}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"hp-a.com": true, "hp-b.com": false, "hp-c.com": true, "hp-d.com": false, "unknown.test": false} {
		if got, err := s.SeenUp(ctx, name); err != nil || got != want {
			t.Errorf("SeenUp(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
}

// SQLite's own "database or disk is full" (here from a page limit) is said as a full disk,
// naming the file, and the batch is not half-stored.
func TestDiskFullIsSaidAsSuch(t *testing.T) {
	sqliteOnly(t, "a full disk under the file")
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
		batch = append(batch, sighting(t, fmt.Sprintf("hp-setup-%d.com", i), time.Now(), fmt.Sprint(i)))
	}
	_, err := s.Save(ctx, batch, Counts{})
	if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "safe") {
		t.Fatalf("full: %v", err)
	}
	if cs, _ := s.Cases(ctx, Query{}); len(cs) != 0 {
		t.Errorf("%d cases stored from a failed batch", len(cs))
	}
}

// A damaged file is found by QuickCheck, named, and told apart from other errors.
func TestQuickCheckFindsCorruption(t *testing.T) {
	sqliteOnly(t, "a damaged file")
	ctx := context.Background()
	s, path := openTemp(t)
	var batch []Sighting
	for i := 0; i < 3000; i++ {
		batch = append(batch, sighting(t, fmt.Sprintf("hp-setup-%d.com", i), time.Now(), fmt.Sprint(i)))
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

// Reads go through their own pool: a long write transaction does not hold a listing up.
func TestReadsDoNotWaitForTheWriter(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	if _, err := s.Save(ctx, []Sighting{sighting(t, "hp-printer-help.com", time.Now(), "A")}, Counts{}); err != nil {
		t.Fatal(err)
	}
	tx, err := s.db.BeginTx(ctx, nil) // holds the only writer connection (BEGIN IMMEDIATE)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE cases SET last_seen = last_seen + 1`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		cs, err := s.Cases(rctx, Query{})
		if err == nil && len(cs) != 1 {
			err = fmt.Errorf("%d cases", len(cs))
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("a read during a write transaction: %v", err)
	}
}

// Two writers (two ingest processes) storing overlapping batches at the same time: the same
// names from two logs, in different orders. Neither fails, and every name, case and
// certificate is stored once, as if one writer had stored both.
func TestConcurrentWritersStoreEachNameOnce(t *testing.T) {
	ctx := context.Background()
	first, where := openTemp(t)
	second, err := Open(ctx, where)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	const rounds, perBatch = 20, 40
	var batches [rounds][]Sighting
	for r := range rounds {
		for i := range perBatch {
			n := r*perBatch/2 + i // half of each batch is in the one before
			batches[r] = append(batches[r], sighting(t, fmt.Sprintf("hp-printer-help-%d.com", n/2), t0.Add(time.Duration(n)*time.Second), fmt.Sprintf("FP%d", n)))
			if i%2 == 0 {
				batches[r] = append(batches[r], sighting(t, fmt.Sprintf("www.hp-printer-help-%d.com", n/2), t0.Add(time.Duration(n)*time.Second), fmt.Sprintf("FP%d", n)))
			}
		}
	}
	errs := make(chan error, 2)
	for w, s := range []*SQL{first, second} {
		go func() {
			for r := range rounds {
				b := slices.Clone(batches[r])
				if w == 1 {
					slices.Reverse(b)
				}
				if _, err := s.Save(ctx, b, Counts{}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{} // registrable -> certificates
	names := map[string]bool{}
	for _, b := range batches {
		for _, sg := range b {
			names[sg.Result.Domain] = true
		}
	}
	for r := range rounds {
		for i := range perBatch {
			n := r*perBatch/2 + i
			want[fmt.Sprintf("hp-printer-help-%d.com", n/2)] = 0
		}
	}
	certs := map[string]map[string]bool{}
	for _, b := range batches {
		for _, sg := range b {
			reg := sg.Result.Registrable
			if certs[reg] == nil {
				certs[reg] = map[string]bool{}
			}
			certs[reg][sg.Cert.Fingerprint] = true
		}
	}
	cases, err := first.Cases(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != len(want) {
		t.Fatalf("%d cases, want %d", len(cases), len(want))
	}
	stored := 0
	for _, c := range cases {
		if c.CertCount != len(certs[c.Registrable]) {
			t.Errorf("%s: %d certificates, want %d", c.Registrable, c.CertCount, len(certs[c.Registrable]))
		}
		stored += len(c.Names)
	}
	if stored != len(names) {
		t.Errorf("%d names stored, want %d", stored, len(names))
	}
	var jobs int
	if err := first.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE kind = $1`, KindEnrich).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	if jobs != len(want) {
		t.Errorf("%d enrichment jobs, want one per case (%d)", jobs, len(want))
	}
}
