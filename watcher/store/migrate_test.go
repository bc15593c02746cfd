package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
)

// legacyDB makes a database with the per-name schema of earlier versions (migrations 1-6) and
// lets the test fill it with raw SQL, as those versions wrote it.
func legacyDB(t *testing.T, fill func(db *sql.DB)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	old := &SQL{db: db, path: path, dialect: sqliteDialect}
	if err := old.migrate(context.Background(), sqliteMigrations[:6], sqliteSteps); err != nil {
		t.Fatal(err)
	}
	fill(db)
	db.Close()
	return path
}

func execSQL(t *testing.T, db *sql.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// A database of today's per-name schema, where one domain was stored under five spellings,
// becomes one case: names merged by canonical spelling with their earliest first sighting,
// latest last sighting and every certificate once; the enrichment, label, site evidence,
// queued work, liveness checks and abuse reports follow the case.
func TestMigrationMergesSpellingsIntoCases(t *testing.T) {
	sqliteOnly(t, "the per-name schema of earlier versions")
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC).UnixMilli()
	min := int64(60_000)
	enrichment := `{"name":"www.hp-printer-setup-help.com","registrable":"hp-printer-setup-help.com","at":"2026-11-20T12:00:00Z",
		"dns":{"state":"found","a":["192.0.2.10"],"ns":["ns1.example-dns.net"]},
		"registration":{"state":"found","source":"rdap","registrar":"Example Registrar, LLC","created":"2026-11-18T00:00:00Z",
		"abuse_email":"abuse@registrar.test"}}`
	path := legacyDB(t, func(db *sql.DB) {
		finding := func(id int, name, registrable string, first, last int64, enrich string) {
			execSQL(t, db, `INSERT INTO findings (id, name, registrable, brand, score, verdict, reasons, rules_version, first_seen, last_seen,
				cert_count, ct_seen, log_url, cert_index, issuer, fingerprint, enrichment) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
				id, name, registrable, "HP", 80, "alert", `[{"rule":"brand-token","points":30,"detail":"old"}]`, "2026.11.27-3",
				first, last, 1, first-min, "https://log.test/", id, "R3", "FP"+name, enrich)
		}
		finding(1, "HP-PRINTER-SETUP-HELP.COM", "hp-printer-setup-help.com", t0, t0+min, "")
		finding(2, "www.hp-printer-setup-help.com", "hp-printer-setup-help.com", t0+min, t0+2*min, enrichment)
		finding(3, "*.hp-printer-setup-help.com", "hp-printer-setup-help.com", t0+2*min, t0+3*min, "")
		finding(4, "hp-printer-setup-help.com.", "hp-printer-setup-help.com", t0+3*min, t0+300*min, "")
		finding(5, "canon-printer-support.net", "canon-printer-support.net", t0, t0, "")
		for _, c := range []struct {
			id  int
			key string
		}{{1, "AA"}, {2, "AA"}, {3, "CC"}, {4, "BB"}, {4, "AA"}, {5, "DD"}} {
			execSQL(t, db, `INSERT INTO finding_certificates (finding_id, cert_key, seen) VALUES (?,?,?)`, c.id, c.key, t0)
		}
		execSQL(t, db, `INSERT INTO labels (name, label, note, labeled_by, labeled_at) VALUES (?,?,?,?,?)`,
			"www.hp-printer-setup-help.com", "benign", "a partner", "jane", t0+10*min)
		execSQL(t, db, `INSERT INTO enrich_queue (name, queued_at, due_at, attempts) VALUES (?,?,?,?), (?,?,?,?), (?,?,?,?)`,
			"canon-printer-support.net", t0, t0, 2, "HP-PRINTER-SETUP-HELP.COM", t0, t0, 0, "hp-printer-setup-help.com.", t0, t0, 1)
		execSQL(t, db, `INSERT INTO site_queue (name, due_at, attempts) VALUES (?,?,?)`, "canon-printer-support.net", t0, 2)
		execSQL(t, db, `INSERT INTO site_checks (name, checked_at, url, status, verdict, content_score, phones) VALUES (?,?,?,?,?,?,?)`,
			"hp-printer-setup-help.com.", t0+20*min, "https://hp-printer-setup-help.com/", 200, "clone", 80, `[{"e164":"+18882157421","toll_free":true}]`)
		execSQL(t, db, `INSERT INTO site_links (kind, value, name, toll_free, flagged, first_seen) VALUES (?,?,?,?,?,?)`,
			"phone", "+18882157421", "hp-printer-setup-help.com.", 1, 1, t0+20*min)
		execSQL(t, db, `INSERT INTO domain_checks (name, checked_at, state) VALUES (?,?,?), (?,?,?)`,
			"www.hp-printer-setup-help.com", t0+30*min, "live", "HP-PRINTER-SETUP-HELP.COM", t0+30*min, "live")
		execSQL(t, db, `INSERT INTO abuse_reports (id, message_id, registrar, recipient, file, prepared_at, sent_at) VALUES (?,?,?,?,?,?,?)`,
			1, "<m@x>", "Example Registrar, LLC", "abuse@registrar.test", "f.eml", t0, t0)
		execSQL(t, db, `INSERT INTO abuse_report_domains (report_id, name) VALUES (?,?), (?,?)`, 1, "www.hp-printer-setup-help.com", 1, "hp-printer-setup-help.com.")
	})

	ctx := context.Background()
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cases, err := s.Cases(ctx, Query{})
	if err != nil || len(cases) != 2 {
		t.Fatalf("cases %d, %v", len(cases), err)
	}
	c := caseOf(t, s, "hp-printer-setup-help.com")
	if len(c.Names) != 2 {
		t.Fatalf("names %+v", c.Names)
	}
	byName := map[string]int{}
	for i, n := range c.Names {
		byName[n.Name] = i
	}
	apex, www := c.Names[byName["hp-printer-setup-help.com"]], c.Names[byName["www.hp-printer-setup-help.com"]]
	if !apex.Wildcard || apex.FirstSeen.UnixMilli() != t0 || apex.LastSeen.UnixMilli() != t0+300*min || apex.CertCount != 3 ||
		apex.Cert.Fingerprint != "FPHP-PRINTER-SETUP-HELP.COM" {
		t.Errorf("apex merged from four spellings: %+v", apex)
	}
	if www.Wildcard || www.CertCount != 1 || www.FirstSeen.UnixMilli() != t0+min {
		t.Errorf("www: %+v", www)
	}
	if c.CertCount != 3 || c.FirstSeen.UnixMilli() != t0 || c.LastSeen.UnixMilli() != t0+300*min || c.CTSeen.UnixMilli() != t0-min {
		t.Errorf("case: certs %d first %s last %s ct %s", c.CertCount, c.FirstSeen, c.LastSeen, c.CTSeen)
	}
	if c.Enrichment == nil || c.Enrichment.Registration.Registrar != "Example Registrar, LLC" || len(c.Enrichment.DNS) != 1 ||
		c.Enrichment.DNS[0].Name != "www.hp-printer-setup-help.com" {
		t.Errorf("enrichment %+v", c.Enrichment)
	}
	if c.Label == nil || c.Label.Label != rules.LabelBenign || c.Label.By != "jane" || c.Label.Note != "a partner" {
		t.Errorf("label %+v", c.Label)
	}
	if len(c.Sites) != 1 || c.Sites[0].Name != "hp-printer-setup-help.com" || c.Sites[0].Verdict != rules.SiteClone {
		t.Errorf("site evidence %+v", c.Sites)
	}
	// The score is recomputed from the facts with the current rules: site and label reasons.
	rs := defaultRules(t)
	if c.Score.RulesVersion != rs.Version || !hasRule(c.Score.Reasons, "site:clone") || !hasRule(c.Score.Reasons, "label:benign") ||
		!hasRule(c.Score.Reasons, rules.RuleRegisteredRecently) {
		t.Errorf("score %+v", c.Score)
	}
	// Queued work: one enrichment job per case (the HP spellings merged), the site re-check
	// number kept.
	if n, _ := s.PendingJobs(ctx, []string{KindEnrich}); n != 2 {
		t.Errorf("%d enrichment jobs, want 2", n)
	}
	var run int
	if err := s.db.QueryRow(`SELECT run FROM jobs j JOIN cases c ON c.id = j.case_id WHERE j.kind = 'site' AND c.registrable = 'canon-printer-support.net'`).Scan(&run); err != nil || run != 2 {
		t.Errorf("site job run %d, %v", run, err)
	}
	// Liveness checks, abuse reports and site links refer to the case.
	var n int
	s.db.QueryRow(`SELECT COUNT(*) FROM domain_checks WHERE name = 'hp-printer-setup-help.com'`).Scan(&n)
	if n != 1 {
		t.Errorf("%d liveness checks for the case, want 1 (two spellings at the same time merge)", n)
	}
	reported, _ := s.ReportedCases(ctx)
	if len(reported) != 1 || !reported["hp-printer-setup-help.com"] {
		t.Errorf("reported %v", reported)
	}
	s.db.QueryRow(`SELECT COUNT(*) FROM site_links l JOIN cases c ON c.id = l.case_id WHERE c.registrable = 'hp-printer-setup-help.com'`).Scan(&n)
	if n != 1 {
		t.Errorf("%d site links for the case", n)
	}
	for _, table := range []string{"findings", "finding_certificates", "enrich_queue", "site_queue"} {
		var name string
		if err := s.db.QueryRow(`SELECT name FROM sqlite_master WHERE name = ?`, table).Scan(&name); err != sql.ErrNoRows {
			t.Errorf("table %s is still there", table)
		}
	}
}

func hasRule(reasons []rules.Reason, rule string) bool {
	for _, r := range reasons {
		if r.Rule == rule {
			return true
		}
	}
	return false
}
