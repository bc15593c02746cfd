package store

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

// SiteCheck is the evidence one site check keeps.
type SiteCheck struct {
	Name       string            `json:"name"`
	At         time.Time         `json:"checked_at"`
	URL        string            `json:"url,omitempty"`
	Status     int               `json:"status,omitempty"`
	Title      string            `json:"title,omitempty"`
	Verdict    rules.SiteVerdict `json:"verdict"`
	Score      int               `json:"content_score"`
	Brand      string            `json:"brand,omitempty"`
	Reasons    []rules.Reason    `json:"reasons"`
	Indicators []string          `json:"indicators"`
	Phones     []rules.SitePhone `json:"phones"`
	Chats      []string          `json:"chat_accounts,omitempty"`
	Kit        string            `json:"kit,omitempty"` // the known kit it matches, if any
	SHA256     string            `json:"sha256,omitempty"`
	TLSH       string            `json:"tlsh,omitempty"`
	SimilarTo  string            `json:"similar_to,omitempty"`
	Error      string            `json:"error,omitempty"`
	Body       []byte            `json:"-"` // kept compressed, bounded
}

// maxStoredBody bounds the compressed copy of a page kept as evidence.
const maxStoredBody = 256 << 10

// ClaimSiteChecks returns up to n findings due for a site check, with how many checks each
// has had, and holds them for lease. With afterEnrichment, findings still waiting for
// enrichment wait here too, so the revised score is built on both.
func (s *SQLite) ClaimSiteChecks(ctx context.Context, n int, now time.Time, lease time.Duration, afterEnrichment bool) ([]watcher.Finding, []int, error) {
	q := `SELECT name, attempts FROM site_queue WHERE due_at <= ?`
	if afterEnrichment {
		q += ` AND name NOT IN (SELECT name FROM enrich_queue)`
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY due_at LIMIT ?`, now.UnixMilli(), n)
	if err != nil {
		return nil, nil, err
	}
	var names []string
	var attempts []int
	for rows.Next() {
		var name string
		var a int
		if err := rows.Scan(&name, &a); err != nil {
			rows.Close()
			return nil, nil, err
		}
		names, attempts = append(names, name), append(attempts, a)
	}
	rows.Close()
	var out []watcher.Finding
	var outAttempts []int
	for i, name := range names {
		if _, err := s.db.ExecContext(ctx, `UPDATE site_queue SET due_at = ?, attempts = attempts + 1 WHERE name = ?`, now.Add(lease).UnixMilli(), name); err != nil {
			return nil, nil, err
		}
		fs, err := s.Findings(ctx, Query{Name: name})
		if err != nil {
			return nil, nil, err
		}
		if len(fs) == 1 {
			out, outAttempts = append(out, fs[0]), append(outAttempts, attempts[i]+1)
		}
	}
	return out, outAttempts, nil
}

// SaveSiteCheck keeps the evidence of a check, links its phone numbers to the name, stores the
// revised score when given, and either takes the name off the queue (next zero) or sets when
// it is checked again.
func (s *SQLite) SaveSiteCheck(ctx context.Context, c *SiteCheck, revised *rules.Result, next time.Time) error {
	reasons, _ := json.Marshal(c.Reasons)
	indicators, _ := json.Marshal(c.Indicators)
	phones, _ := json.Marshal(c.Phones)
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
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO site_checks (name, checked_at, url, status, title, verdict, content_score, brand, reasons,
		indicators, phones, sha256, tlsh, similar_to, error, body_gz) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		c.Name, c.At.UnixMilli(), c.URL, c.Status, c.Title, string(c.Verdict), c.Score, c.Brand, string(reasons), string(indicators),
		string(phones), c.SHA256, c.TLSH, c.SimilarTo, c.Error, gz); err != nil {
		return err
	}
	flagged := c.Verdict == rules.SiteClone || c.Verdict == rules.SiteHelpline
	link := func(kind, value string, tollFree bool) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO site_links (kind, value, name, toll_free, flagged, first_seen) VALUES (?,?,?,?,?,?)
			ON CONFLICT DO UPDATE SET flagged = MAX(flagged, excluded.flagged)`, kind, value, c.Name, tollFree, flagged, c.At.UnixMilli())
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
	if c.SHA256 != "" && flagged {
		if err := link("page", c.SHA256, false); err != nil {
			return err
		}
	}
	if revised != nil {
		rj, _ := json.Marshal(revised)
		if _, err := tx.ExecContext(ctx, `UPDATE findings SET revised = ?, revised_score = ?, revised_verdict = ? WHERE name = ?`,
			string(rj), revised.Score, string(revised.Verdict), c.Name); err != nil {
			return err
		}
	}
	if next.IsZero() {
		_, err = tx.ExecContext(ctx, `DELETE FROM site_queue WHERE name = ?`, c.Name)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE site_queue SET due_at = ?, last_error = ? WHERE name = ?`, next.UnixMilli(), c.Error, c.Name)
	}
	if err != nil {
		return err
	}
	return tx.Commit()
}

// LatestSiteChecks returns the newest check of every checked name.
func (s *SQLite) LatestSiteChecks(ctx context.Context) (map[string]*SiteCheck, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.name, c.checked_at, c.url, c.status, c.title, c.verdict, c.content_score, c.brand,
		c.reasons, c.indicators, c.phones, c.sha256, c.tlsh, c.similar_to, c.error FROM site_checks c
		JOIN (SELECT name, MAX(id) AS last FROM site_checks GROUP BY name) l ON c.id = l.last`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]*SiteCheck{}
	for rows.Next() {
		c := &SiteCheck{}
		var at int64
		var verdict, reasons, indicators, phones string
		if err := rows.Scan(&c.Name, &at, &c.URL, &c.Status, &c.Title, &verdict, &c.Score, &c.Brand, &reasons, &indicators, &phones,
			&c.SHA256, &c.TLSH, &c.SimilarTo, &c.Error); err != nil {
			return nil, err
		}
		c.At, c.Verdict = fromMillis(at), rules.SiteVerdict(verdict)
		json.Unmarshal([]byte(reasons), &c.Reasons)
		json.Unmarshal([]byte(indicators), &c.Indicators)
		json.Unmarshal([]byte(phones), &c.Phones)
		out[c.Name] = c
	}
	return out, rows.Err()
}

// FlaggedSitesSharing counts the other names whose clone or helpline site showed the same
// phone number, chat account, kit or page (kind as in Campaign).
func (s *SQLite) FlaggedSitesSharing(ctx context.Context, kind, value, except string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM site_links WHERE kind = ? AND value = ? AND name != ? AND flagged = 1`,
		kind, value, except).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// Campaign is a set of domains whose sites share a phone number, a chat account, a known kit
// or an identical page.
type Campaign struct {
	Kind     string   `json:"kind"` // phone, chat, kit, page
	Value    string   `json:"value"`
	TollFree bool     `json:"toll_free,omitempty"`
	Domains  []string `json:"domains"`
	Flagged  int      `json:"flagged"`
}

// Campaigns lists what two or more checked sites share, largest groups first.
func (s *SQLite) Campaigns(ctx context.Context) ([]Campaign, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, value, name, toll_free, flagged FROM site_links ORDER BY kind, value, name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	by := map[[2]string]*Campaign{}
	for rows.Next() {
		var kind, value, name string
		var toll, flagged bool
		if err := rows.Scan(&kind, &value, &name, &toll, &flagged); err != nil {
			return nil, err
		}
		key := [2]string{kind, value}
		c := by[key]
		if c == nil {
			c = &Campaign{Kind: kind, Value: value}
			by[key] = c
		}
		c.TollFree = c.TollFree || toll
		c.Domains = append(c.Domains, name)
		if flagged {
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
