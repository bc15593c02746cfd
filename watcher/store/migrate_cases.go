package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

// cleanStoredCertificateFields (migration 6) cleans the certificate fields older versions
// stored raw (control characters, bidirectional controls, invalid UTF-8).
func cleanStoredCertificateFields(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, log_name, log_url, cert_link, issuer, fingerprint FROM findings`)
	if err != nil {
		return err
	}
	type fix struct {
		id   int64
		cert watcher.Certificate
	}
	var fixes []fix
	for rows.Next() {
		var f fix
		if err := rows.Scan(&f.id, &f.cert.LogName, &f.cert.LogURL, &f.cert.Link, &f.cert.Issuer, &f.cert.Fingerprint); err != nil {
			rows.Close()
			return err
		}
		before := f.cert
		ev := watcher.Event{Cert: f.cert}
		ev.Sanitize()
		if ev.Cert != before {
			f.cert = ev.Cert
			fixes = append(fixes, f)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, f := range fixes {
		if _, err := tx.ExecContext(ctx, `UPDATE findings SET log_name = $1, log_url = $2, cert_link = $3, issuer = $4, fingerprint = $5 WHERE id = $6`,
			f.cert.LogName, f.cert.LogURL, f.cert.Link, f.cert.Issuer, f.cert.Fingerprint, f.id); err != nil {
			return err
		}
	}
	return nil
}

// legacyFinding is a row of the per-name findings table of schema 1-6.
type legacyFinding struct {
	id                                                  int64
	name, unicode, registrable, brand, verdict, reasons string
	rulesVersion                                        string
	score                                               int
	first, last, ctSeen                                 int64
	cert                                                watcher.Certificate
	notBefore, notAfter                                 int64
	enrichment                                          string
	certKeys                                            map[string]int64 // key -> seen
}

// legacyEnrichment is the per-name enrichment JSON of schema 2-6.
type legacyEnrichment struct {
	Name         string               `json:"name"`
	Registrable  string               `json:"registrable"`
	At           json.RawMessage      `json:"at"`
	DNS          watcher.DNSFacts     `json:"dns"`
	Registration watcher.Registration `json:"registration"`
}

// casesFromFindings (migration 7) turns the per-name findings into cases and names: names are
// merged by their canonical spelling (X.COM, x.com., *.x.com are one name: first seen is the
// earliest, last seen the latest, certificates counted once), names are grouped into cases by
// registrable domain, the per-name enrichments become the case's, labels, site evidence,
// liveness checks, report lists and abuse reports move to the case, and the two old queues
// become jobs. Every case is then scored from its facts.
func casesFromFindings(ctx context.Context, s *SQL, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, name, unicode, registrable, brand, score, verdict, reasons, rules_version, first_seen, last_seen,
		ct_seen, log_name, log_url, cert_index, cert_link, issuer, not_before, not_after, fingerprint, enrichment FROM findings ORDER BY first_seen, id`)
	if err != nil {
		return err
	}
	var all []*legacyFinding
	byID := map[int64]*legacyFinding{}
	for rows.Next() {
		f := &legacyFinding{certKeys: map[string]int64{}}
		if err := rows.Scan(&f.id, &f.name, &f.unicode, &f.registrable, &f.brand, &f.score, &f.verdict, &f.reasons, &f.rulesVersion,
			&f.first, &f.last, &f.ctSeen, &f.cert.LogName, &f.cert.LogURL, &f.cert.Index, &f.cert.Link, &f.cert.Issuer,
			&f.notBefore, &f.notAfter, &f.cert.Fingerprint, &f.enrichment); err != nil {
			rows.Close()
			return err
		}
		all = append(all, f)
		byID[f.id] = f
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	certRows, err := tx.QueryContext(ctx, `SELECT finding_id, cert_key, seen FROM finding_certificates`)
	if err != nil {
		return err
	}
	for certRows.Next() {
		var id, seen int64
		var key string
		if err := certRows.Scan(&id, &key, &seen); err != nil {
			certRows.Close()
			return err
		}
		if f := byID[id]; f != nil {
			f.certKeys[key] = seen
		}
	}
	certRows.Close()

	// Merge spellings into names (findings come oldest first: the first row of a name wins
	// its first score and certificate).
	type mergedName struct {
		canon       string
		wildcard    bool
		first       *legacyFinding
		last, ct    int64
		certKeys    map[string]int64
		enrichments []string
		spellings   []string
		id          int64
	}
	names := map[string]*mergedName{}
	var nameOrder []string
	for _, f := range all {
		canon, wild := rules.Canonical(f.name)
		m := names[canon]
		if m == nil {
			m = &mergedName{canon: canon, first: f, ct: f.ctSeen, certKeys: map[string]int64{}}
			names[canon] = m
			nameOrder = append(nameOrder, canon)
		}
		m.wildcard = m.wildcard || wild
		m.last = max(m.last, f.last)
		if f.ctSeen != 0 && (m.ct == 0 || f.ctSeen < m.ct) {
			m.ct = f.ctSeen
		}
		for k, v := range f.certKeys {
			m.certKeys[k] = v
		}
		if f.enrichment != "" {
			m.enrichments = append(m.enrichments, f.enrichment)
		}
		m.spellings = append(m.spellings, f.name)
	}
	// Group names into cases by registrable domain.
	type mergedCase struct {
		registrable string
		names       []*mergedName
		id          int64
	}
	cases := map[string]*mergedCase{}
	var caseOrder []string
	for _, canon := range nameOrder {
		m := names[canon]
		reg := m.first.registrable
		if reg == "" {
			reg = canon
		}
		c := cases[reg]
		if c == nil {
			c = &mergedCase{registrable: reg}
			cases[reg] = c
			caseOrder = append(caseOrder, reg)
		}
		c.names = append(c.names, m)
	}
	caseOfSpelling := map[string]*mergedCase{}
	canonOfSpelling := map[string]string{}
	var ids []int64
	for _, reg := range caseOrder {
		c := cases[reg]
		first, last, ct := int64(0), int64(0), int64(0)
		caseKeys := map[string]int64{}
		var en *watcher.Enrichment
		for _, m := range c.names {
			if first == 0 || m.first.first < first {
				first = m.first.first
			}
			last = max(last, m.last)
			if m.ct != 0 && (ct == 0 || m.ct < ct) {
				ct = m.ct
			}
			for k, v := range m.certKeys {
				caseKeys[k] = v
			}
			for _, raw := range m.enrichments {
				var le legacyEnrichment
				if json.Unmarshal([]byte(raw), &le) != nil {
					continue
				}
				if en == nil {
					en = &watcher.Enrichment{Registrable: reg}
				}
				var at struct {
					At json.RawMessage `json:"at"`
				}
				_ = json.Unmarshal([]byte(raw), &at)
				_ = json.Unmarshal(at.At, &en.At)
				if le.Registration.State != "" && (en.Registration.State == "" || en.Registration.State == watcher.Unknown) {
					en.Registration = le.Registration
				}
				d := le.DNS
				d.Name = m.canon
				en.DNS = append(en.DNS, d)
			}
			for _, sp := range m.spellings {
				caseOfSpelling[sp] = c
				canonOfSpelling[sp] = m.canon
			}
		}
		if ct == 0 {
			ct = first
		}
		f0 := c.names[0].first
		var enJSON, registrar string
		var registered int64
		if en != nil {
			data, _ := json.Marshal(en)
			enJSON, registrar = string(data), en.Registration.Registrar
			if en.Registration.State == watcher.Found {
				registered = millis(en.Registration.Created)
			}
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO cases (registrable, brand, brand_key, score, verdict, ct_seen, first_seen, last_seen, cert_count,
			enrichment, enriched_at, registrar, registered) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
			reg, f0.brand, strings.ToLower(f0.brand), f0.score, f0.verdict, ct, first, last, len(caseKeys), enJSON, enrichedAt(en),
			registrar, registered).Scan(&c.id); err != nil {
			return fmt.Errorf("case %s: %w", reg, err)
		}
		ids = append(ids, c.id)
		for k, v := range caseKeys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO case_certificates (case_id, cert_key, seen) VALUES ($1, $2, $3)`, c.id, k, v); err != nil {
				return err
			}
		}
		for _, m := range c.names {
			f := m.first
			var reasons []rules.Reason
			_ = json.Unmarshal([]byte(f.reasons), &reasons)
			res := rules.Result{Domain: f.name, Unicode: f.unicode, Registrable: reg, Score: f.score, Verdict: rules.Verdict(f.verdict),
				Brand: f.brand, Reasons: reasons, RulesVersion: f.rulesVersion}
			data, _ := json.Marshal(&res)
			wild := 0
			if m.wildcard {
				wild = 1
			}
			ct := m.ct
			if ct == 0 {
				ct = f.first
			}
			if err := tx.QueryRowContext(ctx, `INSERT INTO names (case_id, name, wildcard, unicode, result, ct_seen, first_seen, last_seen, cert_count,
				log_name, log_url, cert_index, cert_link, issuer, not_before, not_after, fingerprint)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id`,
				c.id, m.canon, wild, f.unicode, string(data), ct, f.first, m.last, len(m.certKeys), f.cert.LogName, f.cert.LogURL, f.cert.Index,
				f.cert.Link, f.cert.Issuer, f.notBefore, f.notAfter, f.cert.Fingerprint).Scan(&m.id); err != nil {
				return fmt.Errorf("name %s: %w", m.canon, err)
			}
			for k, v := range m.certKeys {
				if _, err := tx.ExecContext(ctx, `INSERT INTO name_certificates (name_id, cert_key, seen) VALUES ($1, $2, $3)`, m.id, k, v); err != nil {
					return err
				}
			}
		}
		// The case's first certificate is its earliest name's.
		earliest := c.names[0]
		for _, m := range c.names {
			if m.first.first < earliest.first.first {
				earliest = m
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET first_name_id = $1 WHERE id = $2`, earliest.id, c.id); err != nil {
			return err
		}
	}

	// What referred to names refers to cases now.
	registrableOf := func(name string) string {
		if c := caseOfSpelling[name]; c != nil {
			return c.registrable
		}
		// A label of a name no case has: its registrable domain by the public suffix list
		// alone, not by a rule set, so that editing the rules never changes this migration.
		canon, _ := rules.Canonical(name)
		if reg, err := publicsuffix.EffectiveTLDPlusOne(canon); err == nil {
			return reg
		}
		return canon
	}
	if err := remapNames(ctx, tx, `SELECT DISTINCT name FROM labels`, func(name string) error {
		_, err := tx.ExecContext(ctx, `UPDATE labels SET registrable = $1 WHERE name = $2`, registrableOf(name), name)
		return err
	}); err != nil {
		return err
	}
	if err := remapNames(ctx, tx, `SELECT DISTINCT name FROM site_checks`, func(name string) error {
		c := caseOfSpelling[name]
		canon := canonOfSpelling[name]
		if c == nil {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE site_checks SET case_id = $1, name = $2 WHERE name = $3`, c.id, canon, name)
		return err
	}); err != nil {
		return err
	}
	// The latest verdict marks a case as checked (the score reads its evidence then).
	if _, err := tx.ExecContext(ctx, `UPDATE cases SET site_verdict = (SELECT sc.verdict FROM site_checks sc WHERE sc.case_id = cases.id
		ORDER BY sc.id DESC LIMIT 1) WHERE EXISTS (SELECT 1 FROM site_checks sc WHERE sc.case_id = cases.id)`); err != nil {
		return err
	}
	linkRows, err := tx.QueryContext(ctx, `SELECT kind, value, name, toll_free, flagged, first_seen FROM site_links`)
	if err != nil {
		return err
	}
	type link struct {
		kind, value, name      string
		toll, flagged, firstAt int64
	}
	var links []link
	for linkRows.Next() {
		var l link
		if err := linkRows.Scan(&l.kind, &l.value, &l.name, &l.toll, &l.flagged, &l.firstAt); err != nil {
			linkRows.Close()
			return err
		}
		links = append(links, l)
	}
	linkRows.Close()
	for _, l := range links {
		c := caseOfSpelling[l.name]
		if c == nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO site_links_new (kind, value, case_id, name, toll_free, flagged, first_seen) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT DO NOTHING`, l.kind, l.value, c.id, canonOfSpelling[l.name], l.toll, l.flagged, l.firstAt); err != nil {
			return err
		}
	}
	// Per-name rows keyed by (name, other): renamed to the case; a second spelling of the same
	// row gives way to the first.
	for _, t := range []struct{ table, key string }{{"domain_checks", "checked_at"}, {"report_items", "run_id"}, {"abuse_report_domains", "report_id"}} {
		if err := remapNames(ctx, tx, `SELECT DISTINCT name FROM `+t.table, func(name string) error {
			reg := registrableOf(name)
			if reg == name {
				return nil
			}
			if _, err := tx.ExecContext(ctx, `UPDATE OR IGNORE `+t.table+` SET name = $1 WHERE name = $2`, reg, name); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM `+t.table+` WHERE name = $1`, name)
			return err
		}); err != nil {
			return fmt.Errorf("%s: %w", t.table, err)
		}
	}
	// The old queues become jobs, one per kind and case.
	queued := func(query, kind, after string, maxAttempts int, run bool) error {
		rows, err := tx.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		type item struct {
			name          string
			due, attempts int64
			lastError     string
		}
		var items []item
		for rows.Next() {
			var it item
			if err := rows.Scan(&it.name, &it.due, &it.attempts, &it.lastError); err != nil {
				rows.Close()
				return err
			}
			items = append(items, it)
		}
		rows.Close()
		for _, it := range items {
			c := caseOfSpelling[it.name]
			if c == nil {
				continue
			}
			attempts, runNo := it.attempts, int64(0)
			if run {
				attempts, runNo = 0, it.attempts
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, case_id, run, after_kind, state, attempts, max_attempts, created_at, due_at, last_error)
				VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $7, $8) ON CONFLICT DO NOTHING`,
				kind, c.id, runNo, after, min(attempts, int64(maxAttempts-1)), maxAttempts, it.due, it.lastError); err != nil {
				return err
			}
		}
		return nil
	}
	if err := queued(`SELECT name, due_at, attempts, last_error FROM enrich_queue ORDER BY due_at`, "enrich", "", 6, false); err != nil {
		return err
	}
	if err := queued(`SELECT name, due_at, attempts, last_error FROM site_queue ORDER BY due_at`, "site", "enrich", 4, true); err != nil {
		return err
	}
	for _, stmt := range []string{`DROP TABLE site_links`, `ALTER TABLE site_links_new RENAME TO site_links`, `DROP TABLE enrich_queue`,
		`DROP TABLE site_queue`, `DROP TABLE finding_certificates`, `DROP TABLE findings`} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	for _, id := range ids {
		if err := migration7Label(ctx, tx, id); err != nil {
			return err
		}
	}
	// The cases are scored once the migrations are done, with the deployment's rule set and
	// the scorer of this helpwatch (Open rescores every case left without a rules version):
	// a migration only reshapes data, so editing the scorer never changes what it does.
	s.rescoreAfterMigrations = true
	return nil
}

// migration7Label caches a case's latest label on it: a frozen copy of what the store did
// when migration 7 was written.
func migration7Label(ctx context.Context, tx *sql.Tx, caseID int64) error {
	var label, by, note string
	var at int64
	err := tx.QueryRowContext(ctx, `SELECT l.label, l.labeled_by, l.labeled_at, l.note FROM labels l JOIN cases c ON c.registrable = l.registrable
		WHERE c.id = $1 ORDER BY l.labeled_at DESC, l.id DESC LIMIT 1`, caseID).Scan(&label, &by, &at, &note)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	data, err := json.Marshal(map[string]any{"label": label, "by": by, "at": fromMillis(at), "note": note})
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE cases SET label = $1, label_kind = $2 WHERE id = $3`, string(data), label, caseID)
	return err
}

func enrichedAt(en *watcher.Enrichment) int64 {
	if en == nil {
		return 0
	}
	return millis(en.At)
}

// remapNames calls f for every name the query lists (read first, then changed).
func remapNames(ctx context.Context, tx *sql.Tx, query string, f func(name string) error) error {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	var list []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		list = append(list, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range list {
		if err := f(n); err != nil {
			return err
		}
	}
	return nil
}
