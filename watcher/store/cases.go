package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

// queryer is what both a transaction and a pool can run.
type queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *SQL) Save(ctx context.Context, batch []Sighting, counts Counts) ([]watcher.Case, error) {
	var created []watcher.Case
	err := s.inPhaseTx(ctx, func(tx *phaseTx) error {
		var err error
		created, err = s.save(ctx, tx, batch, counts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// caseTouch is what a batch changes on a case, applied once per case at the end.
type caseTouch struct {
	lastSeen int64
	ctSeen   int64 // the earliest CT time among its new names
	newNames bool
	created  bool
	order    int
	// For a case created by this batch: its names as they came, to score it and to return
	// it without reading it back.
	names []watcher.CaseName
	certs int
}

// batchName is one distinct name of a batch: its first sighting, and what its later ones add.
type batchName struct {
	name, registrable string
	first             int // index of its first sighting
	sg                *Sighting
	at, ct            int64 // of the first sighting
	lastAt            int64 // of the latest
	wildcard          bool  // seen as a wildcard in any sighting
	known             bool  // stored before this batch
	id, caseID        int64
	result            string // the first sighting's score (JSON), for a new name
}

const (
	touchNameQuery = `UPDATE names SET last_seen = CASE WHEN last_seen < $1 THEN $1 ELSE last_seen END,
		wildcard = CASE WHEN $2 = 1 THEN 1 ELSE wildcard END WHERE name = $3 RETURNING id, case_id`
	insertCaseQuery = `INSERT INTO cases (registrable, brand, brand_key, score, verdict, result, rules_version, first_result,
		ct_seen, first_seen, last_seen, points) VALUES ($1, $2, $3, $4, $5, $6, $7, $6, $8, $9, $9, $10) ON CONFLICT (registrable) DO NOTHING RETURNING id`
	insertNameQuery = `INSERT INTO names (case_id, name, wildcard, unicode, result, ct_seen, first_seen, last_seen,
		log_name, log_url, cert_index, cert_link, issuer, not_before, not_after, fingerprint, serial)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $17, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (name) DO NOTHING RETURNING id`
	addNameCertQuery    = `INSERT INTO name_certificates (name_id, cert_key, seen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
	addCaseCertQuery    = `INSERT INTO case_certificates (case_id, cert_key, seen) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
	setFirstNameQuery   = `UPDATE cases SET first_name_id = $1 WHERE id = $2`
	countNameCertsQuery = `UPDATE names SET cert_count = cert_count + $1 WHERE id = $2`
	touchCaseQuery      = `UPDATE cases SET last_seen = CASE WHEN last_seen < $1 THEN $1 ELSE last_seen END,
		ct_seen = CASE WHEN $2 < ct_seen THEN $2 ELSE ct_seen END, cert_count = cert_count + $3 WHERE id = $4`
	enqueueQuery = `INSERT INTO jobs (kind, case_id, after_kind, state, max_attempts, created_at, due_at)
		VALUES ($1, $2, $3, 'queued', $4, $5, $5) ON CONFLICT DO NOTHING`
)

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// labeledAmong reports which of the batch's new cases already have a label waiting.
func (s *SQL) labeledAmong(ctx context.Context, tx queryer, touched map[int64]*caseTouch, caseIDs map[string]int64) (map[int64]bool, error) {
	var regs []any
	for reg, id := range caseIDs {
		if touched[id] != nil && touched[id].created {
			regs = append(regs, reg)
		}
	}
	out := map[int64]bool{}
	for start := 0; start < len(regs); start += 500 {
		chunk := regs[start:min(start+500, len(regs))]
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT registrable FROM labels WHERE registrable IN (`+placeholders(1, len(chunk))+`)`, chunk...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var reg string
			if err := rows.Scan(&reg); err != nil {
				rows.Close()
				return nil, err
			}
			out[caseIDs[reg]] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// newCaseScore scores a case the batch created with several names, from the names alone, as
// the values of rescoreUpdate's score columns.
func newCaseScore(rs *rules.RuleSet, t *caseTouch) ([]any, error) {
	f := &rules.CaseFacts{Registrable: t.names[0].Score.Registrable}
	firsts := make([]rules.Result, 0, len(t.names))
	for _, n := range t.names {
		f.Names = append(f.Names, n.Name)
		firsts = append(firsts, n.Score)
	}
	if f.Registrable == "" {
		f.Registrable = t.names[0].Name
	}
	return scoreColumns(rs, f, firsts)
}

// newCase is a case the batch created, as Save returns it (without reading it back).
func newCase(rs *rules.RuleSet, t *caseTouch, certs int, registrable string) watcher.Case {
	c := watcher.Case{Registrable: registrable, Names: t.names, CTSeen: fromMillis(t.ctSeen), FirstSeen: fromMillis(t.lastSeen), CertCount: certs}
	f := &rules.CaseFacts{Registrable: registrable}
	firsts := make([]rules.Result, 0, len(t.names))
	for i, n := range t.names {
		f.Names = append(f.Names, n.Name)
		firsts = append(firsts, n.Score)
		if i == 0 || n.FirstSeen.Before(c.FirstSeen) {
			c.FirstSeen = n.FirstSeen
		}
		if n.LastSeen.After(c.LastSeen) {
			c.LastSeen = n.LastSeen
		}
	}
	if len(t.names) > 0 {
		c.Cert = t.names[0].Cert
	}
	if len(t.names) == 1 && t.names[0].Score.RulesVersion == rs.Version {
		c.Score = t.names[0].Score
		c.Score.Domain, c.Score.Registrable = t.names[0].Name, registrable
	} else {
		c.Score = rs.ScoreCase(f)
	}
	c.FirstScore = strongest(firsts)
	c.Brand = c.Score.Brand
	return c
}

// rescore recomputes the cached score of cases from their stored facts (rules.ScoreCase).
func (s *SQL) rescore(ctx context.Context, tx queryer, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	rs, err := s.Rules()
	if err != nil {
		return err
	}
	// Many cases at once (a batch, a rule change): the statements are prepared once.
	var update *sql.Stmt
	q := tx
	if p, ok := tx.(preparer); ok && len(ids) > 1 {
		if update, err = p.PrepareContext(ctx, rescoreUpdate); err != nil {
			return err
		}
		defer update.Close()
		pq, err := newPreparedQueryer(ctx, p, caseFactsQuery, caseNamesQuery)
		if err != nil {
			return err
		}
		defer pq.Close()
		q = pq
	}
	for _, id := range ids {
		facts, firsts, err := s.caseFacts(ctx, q, id, nil)
		if err != nil {
			return err
		}
		if facts == nil {
			continue
		}
		args, err := scoreColumns(rs, facts, firsts)
		if err != nil {
			return err
		}
		args = append(args, id)
		if update != nil {
			_, err = update.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, rescoreUpdate, args...)
		}
		if err != nil {
			return fmt.Errorf("%s: storing the score of case %d: %w", s.path, id, err)
		}
	}
	return nil
}

const rescoreUpdate = `UPDATE cases SET score = $1, verdict = $2, result = $3, rules_version = $4, brand = $5, brand_key = $6,
	first_result = $7, points = $8 WHERE id = $9`

// scoreColumns computes a case's score from its facts and returns the values of the
// score columns as rescoreUpdate's first eight arguments.
func scoreColumns(rs *rules.RuleSet, facts *rules.CaseFacts, firsts []rules.Result) ([]any, error) {
	score := rs.ScoreCase(facts)
	first := strongest(firsts)
	rj, err := json.Marshal(&score)
	if err != nil {
		return nil, err
	}
	fj, err := json.Marshal(&first)
	if err != nil {
		return nil, err
	}
	return []any{score.Score, string(score.Verdict), string(rj), score.RulesVersion, score.Brand, strings.ToLower(score.Brand), string(fj),
		score.Points()}, nil
}

// strongest is the highest of the names' first scores.
func strongest(rs []rules.Result) rules.Result {
	var best rules.Result
	for i, r := range rs {
		if i == 0 || r.Score > best.Score || (r.Score == best.Score && len(r.Domain) < len(best.Domain)) {
			best = r
		}
	}
	return best
}

const (
	caseFactsQuery = `SELECT registrable, enrichment, label, site_verdict FROM cases WHERE id = $1`
	caseNamesQuery = `SELECT name, result FROM names WHERE case_id = $1 ORDER BY id`
	// A case and its names in one statement, for a caller that brings the enrichment itself
	// (so it is not read once per name).
	caseWithNamesQuery = `SELECT c.registrable, c.label, c.site_verdict, COALESCE(n.name, ''), COALESCE(n.result, '')
		FROM cases c LEFT JOIN names n ON n.case_id = c.id WHERE c.id = $1 ORDER BY n.id`
)

type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// preparedQueryer runs a few hot queries through statements prepared once, and anything else
// through the transaction it wraps.
type preparedQueryer struct {
	queryer
	stmts map[string]*sql.Stmt
}

func newPreparedQueryer(ctx context.Context, p preparer, queries ...string) (*preparedQueryer, error) {
	pq := &preparedQueryer{queryer: p.(queryer), stmts: map[string]*sql.Stmt{}}
	for _, q := range queries {
		st, err := p.PrepareContext(ctx, q)
		if err != nil {
			pq.Close()
			return nil, err
		}
		pq.stmts[q] = st
	}
	return pq, nil
}

func (p *preparedQueryer) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.stmts[query]; st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.queryer.QueryContext(ctx, query, args...)
}

func (p *preparedQueryer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.stmts[query]; st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.queryer.QueryRowContext(ctx, query, args...)
}

func (p *preparedQueryer) Close() {
	for _, st := range p.stmts {
		st.Close()
	}
}

// caseFacts reads everything a case's score depends on, and its names' first scores. With
// newEnrichment, that enrichment stands for the stored one, which is then not read, and the
// case's row is locked for the caller's update (PostgreSQL; SQLite's writer holds the file).
func (s *SQL) caseFacts(ctx context.Context, q queryer, id int64, newEnrichment *watcher.Enrichment) (*rules.CaseFacts, []rules.Result, error) {
	var registrable, enrichment, label, siteVerdict string
	var f *rules.CaseFacts
	var firsts []rules.Result
	addName := func(name, result string) {
		if name == "" {
			return
		}
		f.Names = append(f.Names, name)
		var r rules.Result
		if json.Unmarshal([]byte(result), &r) == nil {
			firsts = append(firsts, r)
		}
	}
	if newEnrichment != nil {
		query := caseWithNamesQuery
		if s.dialect == postgresDialect {
			query += " FOR UPDATE OF c"
		}
		rows, err := q.QueryContext(ctx, query, id)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			var name, result string
			if err := rows.Scan(&registrable, &label, &siteVerdict, &name, &result); err != nil {
				rows.Close()
				return nil, nil, err
			}
			if f == nil {
				f = &rules.CaseFacts{Registrable: registrable}
			}
			addName(name, result)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
		if f == nil {
			return nil, nil, nil
		}
		facts := watcher.EnrichmentFacts(newEnrichment)
		f.Enrichment = &facts
	} else {
		err := q.QueryRowContext(ctx, caseFactsQuery, id).Scan(&registrable, &enrichment, &label, &siteVerdict)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
		f = &rules.CaseFacts{Registrable: registrable}
		rows, err := q.QueryContext(ctx, caseNamesQuery, id)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			var name, result string
			if err := rows.Scan(&name, &result); err != nil {
				rows.Close()
				return nil, nil, err
			}
			addName(name, result)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	if enrichment != "" {
		var en watcher.Enrichment
		if err := json.Unmarshal([]byte(enrichment), &en); err != nil {
			return nil, nil, fmt.Errorf("%s: case %s has an unreadable enrichment: %w", s.path, registrable, err)
		}
		facts := watcher.EnrichmentFacts(&en)
		f.Enrichment = &facts
	}
	// A case that was never checked has no site evidence and shares no number (its links come
	// from its checks): the two queries are skipped on the hot path of new names.
	if siteVerdict != "" {
		sites, err := s.latestSites(ctx, q, []int64{id})
		if err != nil {
			return nil, nil, err
		}
		var results []rules.SiteResult
		for _, sc := range sites[id] {
			results = append(results, rules.SiteResult{Verdict: sc.Verdict, Score: sc.Score, Brand: sc.Brand, Reasons: sc.Reasons})
		}
		f.Site = rules.StrongestSite(results)
		if err := q.QueryRowContext(ctx, `SELECT COUNT(DISTINCT other.case_id) FROM site_links me JOIN site_links other
			ON other.kind = me.kind AND other.value = me.value AND other.case_id != me.case_id
			WHERE me.case_id = $1 AND me.kind IN ('phone', 'chat') AND other.flagged = 1`, id).Scan(&f.KnownSites); err != nil {
			return nil, nil, err
		}
	}
	if label != "" {
		var l rules.CaseLabel
		if json.Unmarshal([]byte(label), &l) == nil {
			f.Label = &l
		}
	}
	return f, firsts, nil
}

// CaseFacts returns the stored facts a case's score is computed from (rules.ScoreCase), so a
// command can score it again with another rule file exactly as the store would.
func (s *SQL) CaseFacts(ctx context.Context, registrable string) (*rules.CaseFacts, error) {
	var id int64
	err := s.read.QueryRowContext(ctx, `SELECT id FROM cases WHERE registrable = $1`, registrable).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: no case %s", s.path, registrable)
	}
	if err != nil {
		return nil, err
	}
	f, _, err := s.caseFacts(ctx, s.read, id, nil)
	return f, err
}

// Rescore recomputes every case whose cached score was made by another rule-set version.
func (s *SQL) Rescore(ctx context.Context) (int, error) { return s.RescoreProgress(ctx, nil) }

// RescoreProgress is Rescore calling progress with the count so far after each thousand cases.
func (s *SQL) RescoreProgress(ctx context.Context, progress func(done int)) (int, error) {
	rs, err := s.Rules()
	if err != nil {
		return 0, err
	}
	total := 0
	for {
		var ids []int64
		rows, err := s.db.QueryContext(ctx, `SELECT id FROM cases WHERE rules_version != $1 LIMIT 1000`, rs.Version)
		if err != nil {
			return total, err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return total, err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if len(ids) == 0 {
			return total, rows.Err()
		}
		if err := s.inTx(ctx, func(tx *sql.Tx) error { return s.rescore(ctx, tx, ids) }); err != nil {
			return total, err
		}
		total += len(ids)
		if progress != nil {
			progress(total)
		}
	}
}

const caseColumns = `id, registrable, brand, result, first_result, ct_seen, first_seen, last_seen, cert_count, first_name_id, enrichment, label`

func (s *SQL) Cases(ctx context.Context, q Query) ([]watcher.Case, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	timeCol := "ct_seen"
	if q.ByReadTime {
		timeCol = "first_seen"
	}
	if !q.Since.IsZero() {
		where = append(where, timeCol+" >= "+arg(q.Since.UnixMilli()))
	}
	if !q.Until.IsZero() {
		where = append(where, timeCol+" < "+arg(q.Until.UnixMilli()))
	}
	if q.Verdict != "" {
		where = append(where, "verdict = "+arg(string(q.Verdict)))
	}
	if q.MinVerdict != "" {
		var ok []string
		for _, v := range []rules.Verdict{rules.VerdictAlert, rules.VerdictWatch, rules.VerdictIgnore, rules.VerdictInvalid} {
			if v.Rank() >= q.MinVerdict.Rank() {
				ok = append(ok, arg(string(v)))
			}
		}
		where = append(where, "verdict IN ("+strings.Join(ok, ", ")+")")
	}
	if q.Brand != "" {
		where = append(where, "brand_key = "+arg(strings.ToLower(q.Brand)))
	}
	if q.Registrable != "" {
		where = append(where, "registrable = "+arg(q.Registrable))
	}
	where = appendOptional(where, "label_kind", q.Label, arg)
	query := "SELECT " + caseColumns + " FROM cases"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if q.ByPoints {
		query += " ORDER BY points DESC, ct_seen DESC, id DESC"
	} else {
		query += " ORDER BY ct_seen DESC, id DESC"
	}
	if q.Limit > 0 {
		query += " LIMIT " + strconv.Itoa(q.Limit)
	}
	return s.loadCases(ctx, s.read, query, args...)
}

func (s *SQL) Case(ctx context.Context, registrable string) (*watcher.Case, bool, error) {
	cs, err := s.loadCases(ctx, s.read, "SELECT "+caseColumns+" FROM cases WHERE registrable = $1", registrable)
	if err != nil || len(cs) == 0 {
		return nil, false, err
	}
	return &cs[0], true, nil
}

func (s *SQL) CaseByID(ctx context.Context, id int64) (*watcher.Case, bool, error) {
	return s.caseByID(ctx, s.read, id)
}

func (s *SQL) caseByID(ctx context.Context, q queryer, id int64) (*watcher.Case, bool, error) {
	cs, err := s.loadCases(ctx, q, "SELECT "+caseColumns+" FROM cases WHERE id = $1", id)
	if err != nil || len(cs) == 0 {
		return nil, false, err
	}
	return &cs[0], true, nil
}

// loadCases runs a query over caseColumns and fills in each case's names and latest site
// checks (two more queries, whatever the number of cases).
func (s *SQL) loadCases(ctx context.Context, q queryer, query string, args ...any) ([]watcher.Case, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	var out []watcher.Case
	var ids []int64
	firstName := map[int64]int64{}
	for rows.Next() {
		var c watcher.Case
		var id, firstNameID, ct, first, last int64
		var result, firstResult, enrichment, label string
		if err := rows.Scan(&id, &c.Registrable, &c.Brand, &result, &firstResult, &ct, &first, &last, &c.CertCount, &firstNameID,
			&enrichment, &label); err != nil {
			rows.Close()
			return nil, fmt.Errorf("%s: %w", s.path, err)
		}
		if result != "" {
			if err := json.Unmarshal([]byte(result), &c.Score); err != nil {
				rows.Close()
				return nil, fmt.Errorf("%s: case %s has an unreadable score: %w", s.path, c.Registrable, err)
			}
		}
		if firstResult != "" {
			_ = json.Unmarshal([]byte(firstResult), &c.FirstScore)
		}
		if enrichment != "" {
			c.Enrichment = &watcher.Enrichment{}
			if err := json.Unmarshal([]byte(enrichment), c.Enrichment); err != nil {
				rows.Close()
				return nil, fmt.Errorf("%s: case %s has an unreadable enrichment: %w", s.path, c.Registrable, err)
			}
		}
		if label != "" {
			c.Label = &rules.CaseLabel{}
			if json.Unmarshal([]byte(label), c.Label) != nil {
				c.Label = nil
			}
		}
		c.CTSeen, c.FirstSeen, c.LastSeen = fromMillis(ct), fromMillis(first), fromMillis(last)
		c.ID = id
		out = append(out, c)
		ids = append(ids, id)
		firstName[id] = firstNameID
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return out, nil
	}
	index := make(map[int64]int, len(ids))
	for i, id := range ids {
		index[id] = i
	}
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		inArgs := make([]any, len(chunk))
		for i, id := range chunk {
			inArgs[i] = id
		}
		rows, err := q.QueryContext(ctx, `SELECT id, case_id, name, wildcard, unicode, result, ct_seen, first_seen, last_seen, cert_count,
			log_name, log_url, cert_index, cert_link, issuer, not_before, not_after, fingerprint, serial FROM names
			WHERE case_id IN (`+placeholders(1, len(chunk))+`) ORDER BY id`, inArgs...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var n watcher.CaseName
			var id, caseID, ct, first, last, notBefore, notAfter int64
			var wildcard int
			var result string
			if err := rows.Scan(&id, &caseID, &n.Name, &wildcard, &n.Unicode, &result, &ct, &first, &last, &n.CertCount,
				&n.Cert.LogName, &n.Cert.LogURL, &n.Cert.Index, &n.Cert.Link, &n.Cert.Issuer, &notBefore, &notAfter, &n.Cert.Fingerprint, &n.Cert.Serial); err != nil {
				rows.Close()
				return nil, err
			}
			n.Wildcard = wildcard == 1
			_ = json.Unmarshal([]byte(result), &n.Score)
			n.CTSeen, n.FirstSeen, n.LastSeen = fromMillis(ct), fromMillis(first), fromMillis(last)
			n.Cert.NotBefore, n.Cert.NotAfter = fromUnix(notBefore), fromUnix(notAfter)
			c := &out[index[caseID]]
			c.Names = append(c.Names, n)
			if id == firstName[caseID] || c.Cert == (watcher.Certificate{}) {
				c.Cert = n.Cert
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		sites, err := s.latestSites(ctx, q, chunk)
		if err != nil {
			return nil, err
		}
		for id, checks := range sites {
			c := &out[index[id]]
			for _, sc := range checks {
				c.Sites = append(c.Sites, sc)
			}
		}
	}
	return out, nil
}
