package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
)

// SiteCheck is one name's site check as the store keeps it (watcher.SiteEvidence).
type SiteCheck = watcher.SiteEvidence

// maxStoredBody bounds the compressed copy of a page kept as evidence.
const maxStoredBody = 256 << 10

func (s *SQL) SaveSiteChecks(ctx context.Context, job *Job, checks []SiteCheck, recheck time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.now()
		if err := s.lockCaseFirst(ctx, tx, job.CaseID); err != nil {
			return err
		}
		if err := s.completeJob(ctx, tx, job, now); err != nil {
			return err
		}
		results := make([]rules.SiteResult, 0, len(checks))
		for i := range checks {
			c := &checks[i]
			if err := s.insertSiteCheck(ctx, tx, job.CaseID, c); err != nil {
				return err
			}
			results = append(results, rules.SiteResult{Verdict: c.Verdict, Score: c.Score})
		}
		if best := rules.StrongestSite(results); best != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE cases SET site_verdict = $1 WHERE id = $2`, string(best.Verdict), job.CaseID); err != nil {
				return err
			}
		}
		if showedContent(checks) {
			// The evidence of what the site shows is kept by a capture of its own (a
			// screenshot per visitor profile), queued once per check that found a page.
			if _, err := tx.ExecContext(ctx, enqueueQuery, jobs.Capture.Name, job.CaseID, "", jobs.Capture.MaxAttempts, now.UnixMilli()); err != nil {
				return fmt.Errorf("%s: queueing the capture of %s: %w", s.path, job.Registrable, err)
			}
		}
		if !recheck.IsZero() {
			if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, case_id, run, state, max_attempts, created_at, due_at)
				VALUES ($1, $2, $3, 'queued', $4, $5, $6) ON CONFLICT DO NOTHING`,
				jobs.Site.Name, job.CaseID, job.Run+1, jobs.Site.MaxAttempts, now.UnixMilli(), recheck.UnixMilli()); err != nil {
				return fmt.Errorf("%s: queueing the re-check of %s: %w", s.path, job.Registrable, err)
			}
		}
		// This case's score, and that of every case sharing a number or chat account with it
		// (their "known phone" fact may have changed).
		ids := []int64{job.CaseID}
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT other.case_id FROM site_links me JOIN site_links other
			ON other.kind = me.kind AND other.value = me.value AND other.case_id != me.case_id
			WHERE me.case_id = $1 AND me.kind IN ('phone', 'chat')`, job.CaseID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		return s.rescore(ctx, tx, ids)
	})
}

// showedContent says some check got a page that is not a parking page: what a capture keeps.
func showedContent(checks []SiteCheck) bool {
	for _, c := range checks {
		if c.Status > 0 && c.Verdict != rules.SiteUnreachable && c.Verdict != rules.SiteParked {
			return true
		}
	}
	return false
}

// insertSiteCheck keeps one check's evidence and links what it shows to the case.
func (s *SQL) insertSiteCheck(ctx context.Context, tx *sql.Tx, caseID int64, c *SiteCheck) error {
	reasons, _ := json.Marshal(c.Reasons)
	indicators, _ := json.Marshal(c.Indicators)
	phones, _ := json.Marshal(c.Phones)
	pages, _ := json.Marshal(c.Pages)
	chats, _ := json.Marshal(c.Chats)
	var gz []byte
	if len(c.Body) > 0 {
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		w.Write(c.Body)
		w.Close()
		if b.Len() <= maxStoredBody {
			gz = b.Bytes()
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO site_checks (case_id, name, checked_at, url, status, title, verdict, content_score, brand, reasons,
		indicators, phones, sha256, tlsh, similar_to, error, body_gz, pages, chats, kit) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		caseID, c.Name, c.At.UnixMilli(), c.URL, c.Status, c.Title, string(c.Verdict), c.Score, c.Brand, string(reasons), string(indicators),
		string(phones), c.SHA256, c.TLSH, c.SimilarTo, c.Error, gz, string(pages), string(chats), c.Kit); err != nil {
		return fmt.Errorf("%s: storing the site check of %s: %w", s.path, c.Name, err)
	}
	flagged := 0
	if c.Verdict.Flagged() {
		flagged = 1
	}
	link := func(kind, value string, tollFree bool) error {
		toll := 0
		if tollFree {
			toll = 1
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO site_links (kind, value, case_id, name, toll_free, flagged, first_seen) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (kind, value, case_id, name) DO UPDATE SET flagged = CASE WHEN excluded.flagged > site_links.flagged THEN excluded.flagged ELSE site_links.flagged END`,
			kind, value, caseID, c.Name, toll, flagged, c.At.UnixMilli())
		return err
	}
	for _, p := range c.Phones {
		if err := link("phone", p.E164, p.TollFree); err != nil {
			return err
		}
	}
	for _, ch := range c.Chats {
		if err := link("chat", ch, false); err != nil {
			return err
		}
	}
	if c.Kit != "" {
		if err := link("kit", c.Kit, false); err != nil {
			return err
		}
	}
	if c.SHA256 != "" && flagged == 1 {
		if err := link("page", c.SHA256, false); err != nil {
			return err
		}
	}
	return nil
}

// siteCheckColumns are a stored check's evidence, read by scanSiteCheck (prefix c.).
const siteCheckColumns = `c.name, c.checked_at, c.url, c.status, c.title, c.verdict, c.content_score, c.brand, c.reasons,
	c.indicators, c.phones, c.sha256, c.tlsh, c.similar_to, c.error, c.pages, c.chats, c.kit`

// scanSiteCheck reads siteCheckColumns, after the columns in before.
func scanSiteCheck(rows *sql.Rows, before ...any) (SiteCheck, error) {
	var c SiteCheck
	var at int64
	var verdict, reasons, indicators, phones, pages, chats string
	dest := append(before, &c.Name, &at, &c.URL, &c.Status, &c.Title, &verdict, &c.Score, &c.Brand, &reasons, &indicators, &phones,
		&c.SHA256, &c.TLSH, &c.SimilarTo, &c.Error, &pages, &chats, &c.Kit)
	if err := rows.Scan(dest...); err != nil {
		return c, err
	}
	c.At, c.Verdict = fromMillis(at), rules.SiteVerdict(verdict)
	json.Unmarshal([]byte(reasons), &c.Reasons)
	json.Unmarshal([]byte(indicators), &c.Indicators)
	json.Unmarshal([]byte(phones), &c.Phones)
	json.Unmarshal([]byte(pages), &c.Pages)
	json.Unmarshal([]byte(chats), &c.Chats)
	return c, nil
}

// latestSites returns the newest check of every checked name of the cases, by case.
func (s *SQL) latestSites(ctx context.Context, q queryer, caseIDs []int64) (map[int64][]SiteCheck, error) {
	if len(caseIDs) == 0 {
		return nil, nil
	}
	args := make([]any, len(caseIDs))
	for i, id := range caseIDs {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, `SELECT c.case_id, `+siteCheckColumns+` FROM site_checks c
		JOIN (SELECT name, MAX(id) AS last FROM site_checks WHERE case_id IN (`+placeholders(1, len(args))+`) GROUP BY name) l ON c.id = l.last
		ORDER BY c.case_id, c.name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64][]SiteCheck{}
	for rows.Next() {
		var caseID int64
		c, err := scanSiteCheck(rows, &caseID)
		if err != nil {
			return nil, err
		}
		out[caseID] = append(out[caseID], c)
	}
	return out, rows.Err()
}

// LatestSiteChecks returns the newest check of every checked name, by name.
func (s *SQL) LatestSiteChecks(ctx context.Context) (map[string]*SiteCheck, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+siteCheckColumns+` FROM site_checks c
		JOIN (SELECT name, MAX(id) AS last FROM site_checks GROUP BY name) l ON c.id = l.last`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*SiteCheck{}
	for rows.Next() {
		c, err := scanSiteCheck(rows)
		if err != nil {
			return nil, err
		}
		out[c.Name] = &c
	}
	return out, rows.Err()
}

// Campaign is a set of cases whose sites share a phone number, a chat account, a known kit or
// an identical page.
type Campaign struct {
	Kind     string   `json:"kind"` // phone, chat, kit, page
	Value    string   `json:"value"`
	TollFree bool     `json:"toll_free,omitempty"`
	Domains  []string `json:"domains"` // registrable domains
	Flagged  int      `json:"flagged"`
}

// Campaigns lists what two or more checked cases share, largest groups first.
func (s *SQL) Campaigns(ctx context.Context) ([]Campaign, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT l.kind, l.value, c.registrable, MAX(l.toll_free), MAX(l.flagged) FROM site_links l
		JOIN cases c ON c.id = l.case_id GROUP BY l.kind, l.value, c.registrable ORDER BY l.kind, l.value, c.registrable`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	by := map[[2]string]*Campaign{}
	for rows.Next() {
		var kind, value, registrable string
		var toll, flagged int
		if err := rows.Scan(&kind, &value, &registrable, &toll, &flagged); err != nil {
			return nil, err
		}
		key := [2]string{kind, value}
		c := by[key]
		if c == nil {
			c = &Campaign{Kind: kind, Value: value}
			by[key] = c
		}
		c.TollFree = c.TollFree || toll == 1
		c.Domains = append(c.Domains, registrable)
		if flagged == 1 {
			c.Flagged++
		}
	}
	var out []Campaign
	for _, c := range by {
		if len(c.Domains) >= 2 {
			out = append(out, *c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].Domains) != len(out[j].Domains) {
			return len(out[i].Domains) > len(out[j].Domains)
		}
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Value < out[j].Value
	})
	return out, rows.Err()
}
