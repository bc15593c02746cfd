package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

// DefaultPath is where `helpwatch watch` keeps its findings unless --db says otherwise.
const DefaultPath = "helpwatch.db"

// migrations are applied in order, each in its own transaction; the schema version is the
// number applied. Never edit a released migration: add the next one.
var migrations = []string{
	// 1: findings, the certificates seen with them, and per-day counters.
	`CREATE TABLE findings (
		id            INTEGER PRIMARY KEY,
		name          TEXT    NOT NULL UNIQUE,
		unicode       TEXT    NOT NULL DEFAULT '',
		registrable   TEXT    NOT NULL DEFAULT '',
		brand         TEXT    NOT NULL DEFAULT '',
		score         INTEGER NOT NULL,
		verdict       TEXT    NOT NULL,
		reasons       TEXT    NOT NULL, -- JSON array of {rule, points, detail}
		rules_version TEXT    NOT NULL,
		first_seen    INTEGER NOT NULL, -- Unix milliseconds, helpwatch's clock
		last_seen     INTEGER NOT NULL,
		cert_count    INTEGER NOT NULL DEFAULT 0,
		ct_seen       INTEGER NOT NULL DEFAULT 0, -- Unix milliseconds, the certstream server's clock
		log_name      TEXT    NOT NULL DEFAULT '',
		log_url       TEXT    NOT NULL DEFAULT '',
		cert_index    INTEGER NOT NULL DEFAULT -1,
		cert_link     TEXT    NOT NULL DEFAULT '',
		issuer        TEXT    NOT NULL DEFAULT '',
		not_before    INTEGER NOT NULL DEFAULT 0, -- Unix seconds
		not_after     INTEGER NOT NULL DEFAULT 0,
		fingerprint   TEXT    NOT NULL DEFAULT ''
	);
	CREATE INDEX findings_first_seen ON findings(first_seen);
	CREATE INDEX findings_brand ON findings(brand COLLATE NOCASE, first_seen);
	CREATE TABLE finding_certificates (
		finding_id INTEGER NOT NULL REFERENCES findings(id),
		cert_key   TEXT    NOT NULL, -- fingerprint, else log URL and index
		seen       INTEGER NOT NULL,
		PRIMARY KEY (finding_id, cert_key)
	) WITHOUT ROWID;
	CREATE TABLE daily_counts (
		day      TEXT    PRIMARY KEY, -- YYYY-MM-DD, UTC
		messages INTEGER NOT NULL DEFAULT 0,
		names    INTEGER NOT NULL DEFAULT 0,
		findings INTEGER NOT NULL DEFAULT 0,
		dropped  INTEGER NOT NULL DEFAULT 0
	);`,
	// 2: enrichment. The queue lives here so a restart loses no pending lookup; registration
	// data is cached per registrable domain; the revised score sits next to the first one.
	`ALTER TABLE findings ADD COLUMN enriched_at INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE findings ADD COLUMN enrichment TEXT NOT NULL DEFAULT ''; -- JSON watcher.Enrichment
	ALTER TABLE findings ADD COLUMN revised TEXT NOT NULL DEFAULT '';    -- JSON rules.Result
	ALTER TABLE findings ADD COLUMN revised_score INTEGER;
	ALTER TABLE findings ADD COLUMN revised_verdict TEXT;
	CREATE TABLE enrich_queue (
		name       TEXT    PRIMARY KEY,
		queued_at  INTEGER NOT NULL,
		due_at     INTEGER NOT NULL, -- Unix ms; a claimed item is pushed forward by its lease
		attempts   INTEGER NOT NULL DEFAULT 0,
		last_error TEXT    NOT NULL DEFAULT ''
	);
	CREATE INDEX enrich_queue_due ON enrich_queue(due_at);
	INSERT INTO enrich_queue (name, queued_at, due_at) SELECT name, first_seen, 0 FROM findings;
	CREATE TABLE registration_cache (
		registrable TEXT    PRIMARY KEY,
		data        TEXT    NOT NULL, -- JSON watcher.Registration
		expires_at  INTEGER NOT NULL
	);`,
	// 3: what happened to findings after they were reported: liveness checks, daily report runs
	// (to say what changed since the previous one) and abuse reports with their takedowns.
	`CREATE TABLE domain_checks (
		name       TEXT    NOT NULL,
		checked_at INTEGER NOT NULL,
		state      TEXT    NOT NULL, -- live, dark, suspended, unknown
		detail     TEXT    NOT NULL DEFAULT '',
		PRIMARY KEY (name, checked_at)
	) WITHOUT ROWID;
	CREATE TABLE report_runs (
		id          INTEGER PRIMARY KEY,
		at          INTEGER NOT NULL,
		period_from INTEGER NOT NULL,
		period_to   INTEGER NOT NULL,
		brand       TEXT    NOT NULL DEFAULT ''
	);
	CREATE TABLE report_items (
		run_id INTEGER NOT NULL REFERENCES report_runs(id),
		name   TEXT    NOT NULL,
		state  TEXT    NOT NULL,
		PRIMARY KEY (run_id, name)
	) WITHOUT ROWID;
	CREATE TABLE abuse_reports (
		id          INTEGER PRIMARY KEY,
		message_id  TEXT    NOT NULL UNIQUE,
		registrar   TEXT    NOT NULL,
		recipient   TEXT    NOT NULL,
		file        TEXT    NOT NULL,
		prepared_at INTEGER NOT NULL,
		sent_at     INTEGER,
		smtp_reply  TEXT    NOT NULL DEFAULT ''
	);
	CREATE TABLE abuse_report_domains (
		report_id      INTEGER NOT NULL REFERENCES abuse_reports(id),
		name           TEXT    NOT NULL,
		taken_down_at  INTEGER,
		takedown_state TEXT    NOT NULL DEFAULT '',
		PRIMARY KEY (report_id, name)
	) WITHOUT ROWID;`,
	// 4: analyst labels, kept as a history (the latest label of a name counts).
	`CREATE TABLE labels (
		id         INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		label      TEXT    NOT NULL, -- scam, benign, unsure
		note       TEXT    NOT NULL DEFAULT '',
		labeled_by TEXT    NOT NULL,
		labeled_at INTEGER NOT NULL
	);
	CREATE INDEX labels_name ON labels(name, labeled_at);`,
	// 5: the site check: evidence per check, what sites share (phone numbers, chat accounts,
	// kits: campaigns), and a queue with re-check times for sites that are not up yet.
	`CREATE TABLE site_checks (
		id            INTEGER PRIMARY KEY,
		name          TEXT    NOT NULL,
		checked_at    INTEGER NOT NULL,
		url           TEXT    NOT NULL DEFAULT '',
		status        INTEGER NOT NULL DEFAULT 0,
		title         TEXT    NOT NULL DEFAULT '',
		verdict       TEXT    NOT NULL,
		content_score INTEGER NOT NULL DEFAULT 0,
		brand         TEXT    NOT NULL DEFAULT '',
		reasons       TEXT    NOT NULL DEFAULT '[]', -- JSON
		indicators    TEXT    NOT NULL DEFAULT '[]', -- JSON
		phones        TEXT    NOT NULL DEFAULT '[]', -- JSON
		sha256        TEXT    NOT NULL DEFAULT '',
		tlsh          TEXT    NOT NULL DEFAULT '',
		similar_to    TEXT    NOT NULL DEFAULT '',
		error         TEXT    NOT NULL DEFAULT '',
		body_gz       BLOB -- the page, gzip, at most 256 KiB compressed
	);
	CREATE INDEX site_checks_name ON site_checks(name, checked_at);
	CREATE TABLE site_links (
		kind       TEXT    NOT NULL, -- phone, chat (a chat widget account), kit, page (identical body)
		value      TEXT    NOT NULL,
		name       TEXT    NOT NULL,
		toll_free  INTEGER NOT NULL DEFAULT 0,
		flagged    INTEGER NOT NULL DEFAULT 0, -- the site was clone or helpline
		first_seen INTEGER NOT NULL,
		PRIMARY KEY (kind, value, name)
	) WITHOUT ROWID;
	CREATE TABLE site_queue (
		name       TEXT    PRIMARY KEY,
		due_at     INTEGER NOT NULL,
		attempts   INTEGER NOT NULL DEFAULT 0,
		last_error TEXT    NOT NULL DEFAULT ''
	);
	INSERT INTO site_queue (name, due_at) SELECT name, 0 FROM findings;`,
	// 6: certificate fields are cleaned where events are made now; clean what older versions
	// stored (raw control characters, bidirectional controls, invalid UTF-8). Done in Go below.
	`SELECT 1`,
}

// goMigrations run after the SQL of their version, in the same transaction: steps SQL cannot
// express.
var goMigrations = map[int]func(ctx context.Context, tx *sql.Tx) error{
	6: cleanStoredCertificateFields,
}

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
		if _, err := tx.ExecContext(ctx, `UPDATE findings SET log_name = ?, log_url = ?, cert_link = ?, issuer = ?, fingerprint = ? WHERE id = ?`,
			f.cert.LogName, f.cert.LogURL, f.cert.Link, f.cert.Issuer, f.cert.Fingerprint, f.id); err != nil {
			return err
		}
	}
	return nil
}

// SQLite is the embedded Store. It is safe for concurrent use; writes are serialized.
type SQLite struct {
	db   *sql.DB
	path string
}

// OpenSQLite opens (creating if needed) the database at path and brings its schema up to date.
// WAL journaling with synchronous=NORMAL: a crash, even kill -9, loses no committed transaction
// and never leaves a corrupt file; a power loss may lose the last few.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if path == "" {
		path = DefaultPath
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and it keeps the pragmas on every use.
	db.SetMaxOpenConns(1)
	s := &SQLite{db: db, path: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *SQLite) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		if err := s.explain(err); errors.Is(err, ErrDiskFull) || errors.Is(err, ErrCorrupt) {
			return err
		}
		return fmt.Errorf("%s: not a usable SQLite database: %w", s.path, err)
	}
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("%s: reading schema version: %w", s.path, err)
	}
	if current > len(migrations) {
		return fmt.Errorf("%s: schema version %d is newer than this helpwatch understands (%d); use a newer helpwatch", s.path, current, len(migrations))
	}
	for v := current + 1; v <= len(migrations); v++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			tx.Rollback()
			return fmt.Errorf("%s: migration %d: %w", s.path, v, s.explain(err))
		}
		if step := goMigrations[v]; step != nil {
			if err := step(ctx, tx); err != nil {
				tx.Rollback()
				return fmt.Errorf("%s: migration %d: %w", s.path, v, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)`, v, time.Now().Unix()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("%s: migration %d: %w", s.path, v, s.explain(err))
		}
	}
	return nil
}

// Path is the database file.
func (s *SQLite) Path() string { return s.path }

func certKey(c *watcher.Certificate) string {
	if c.Fingerprint != "" {
		return c.Fingerprint
	}
	if c.LogURL != "" && c.Index >= 0 {
		return c.LogURL + "#" + strconv.FormatInt(c.Index, 10)
	}
	return ""
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func (s *SQLite) Save(ctx context.Context, batch []Sighting, counts Counts) ([]watcher.Finding, error) {
	created, err := s.save(ctx, batch, counts)
	return created, s.explain(err)
}

func (s *SQLite) save(ctx context.Context, batch []Sighting, counts Counts) ([]watcher.Finding, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: begin: %w", s.path, err)
	}
	defer tx.Rollback() // no-op after Commit
	insert, err := tx.PrepareContext(ctx, `INSERT INTO findings (name, unicode, registrable, brand, score, verdict,
		reasons, rules_version, first_seen, last_seen, ct_seen, log_name, log_url, cert_index, cert_link, issuer,
		not_before, not_after, fingerprint) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(name) DO NOTHING RETURNING id`)
	if err != nil {
		return nil, err
	}
	touch, err := tx.PrepareContext(ctx, `UPDATE findings SET last_seen = MAX(last_seen, ?) WHERE name = ? RETURNING id`)
	if err != nil {
		return nil, err
	}
	addCert, err := tx.PrepareContext(ctx, `INSERT INTO finding_certificates (finding_id, cert_key, seen) VALUES (?,?,?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return nil, err
	}
	countCert, err := tx.PrepareContext(ctx, `UPDATE findings SET cert_count = cert_count + 1 WHERE id = ?`)
	if err != nil {
		return nil, err
	}
	enqueue, err := tx.PrepareContext(ctx, `INSERT INTO enrich_queue (name, queued_at, due_at) VALUES (?,?,?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return nil, err
	}
	enqueueSite, err := tx.PrepareContext(ctx, `INSERT INTO site_queue (name, due_at) VALUES (?,?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return nil, err
	}
	var created []watcher.Finding
	for i := range batch {
		sg := &batch[i]
		r := &sg.Result
		reasons, err := json.Marshal(r.Reasons)
		if err != nil {
			return nil, err
		}
		at := millis(sg.At)
		var id int64
		err = insert.QueryRowContext(ctx, r.Domain, r.Unicode, r.Registrable, r.Brand, r.Score, string(r.Verdict),
			string(reasons), r.RulesVersion, at, at, millis(sg.CTSeen), sg.Cert.LogName, sg.Cert.LogURL, sg.Cert.Index,
			sg.Cert.Link, sg.Cert.Issuer, unixOrZero(sg.Cert.NotBefore), unixOrZero(sg.Cert.NotAfter), sg.Cert.Fingerprint).Scan(&id)
		isNew := err == nil
		if errors.Is(err, sql.ErrNoRows) {
			err = touch.QueryRowContext(ctx, at, r.Domain).Scan(&id)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: storing %s: %w", s.path, r.Domain, err)
		}
		if key := certKey(&sg.Cert); key != "" {
			res, err := addCert.ExecContext(ctx, id, key, at)
			if err != nil {
				return nil, fmt.Errorf("%s: storing certificate of %s: %w", s.path, r.Domain, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				if _, err := countCert.ExecContext(ctx, id); err != nil {
					return nil, err
				}
			}
		}
		if isNew {
			if _, err := enqueue.ExecContext(ctx, r.Domain, at, at); err != nil {
				return nil, fmt.Errorf("%s: queueing %s for enrichment: %w", s.path, r.Domain, err)
			}
			if _, err := enqueueSite.ExecContext(ctx, r.Domain, at); err != nil {
				return nil, fmt.Errorf("%s: queueing %s for the site check: %w", s.path, r.Domain, err)
			}
			f := watcher.Finding{Result: *r, FirstSeen: sg.At, LastSeen: sg.At, CTSeen: sg.CTSeen, Cert: sg.Cert}
			if certKey(&sg.Cert) != "" {
				f.CertCount = 1
			}
			created = append(created, f)
		}
	}
	counts.Findings = int64(len(created))
	if counts != (Counts{}) {
		day := time.Now().UTC().Format(time.DateOnly)
		if _, err := tx.ExecContext(ctx, `INSERT INTO daily_counts (day, messages, names, findings, dropped) VALUES (?,?,?,?,?)
			ON CONFLICT(day) DO UPDATE SET messages = messages + excluded.messages, names = names + excluded.names,
			findings = findings + excluded.findings, dropped = dropped + excluded.dropped`,
			day, counts.Messages, counts.Names, counts.Findings, counts.Dropped); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("%s: commit: %w", s.path, err)
	}
	return created, nil
}

const findingColumns = `name, unicode, registrable, brand, score, verdict, reasons, rules_version, first_seen,
	last_seen, cert_count, ct_seen, log_name, log_url, cert_index, cert_link, issuer, not_before, not_after, fingerprint,
	enrichment, revised`

func (s *SQLite) Findings(ctx context.Context, q Query) ([]watcher.Finding, error) {
	var where []string
	var args []any
	if !q.Since.IsZero() {
		where, args = append(where, "first_seen >= ?"), append(args, q.Since.UnixMilli())
	}
	if !q.Until.IsZero() {
		where, args = append(where, "first_seen < ?"), append(args, q.Until.UnixMilli())
	}
	if q.Verdict != "" {
		where, args = append(where, "verdict = ?"), append(args, string(q.Verdict))
	}
	if q.MinVerdict != "" {
		var ok []string
		for _, v := range []rules.Verdict{rules.VerdictAlert, rules.VerdictWatch, rules.VerdictIgnore, rules.VerdictInvalid} {
			if v.Rank() >= q.MinVerdict.Rank() {
				ok = append(ok, "'"+string(v)+"'")
			}
		}
		where = append(where, "verdict IN ("+strings.Join(ok, ",")+")")
	}
	if q.Brand != "" {
		where, args = append(where, "brand = ? COLLATE NOCASE"), append(args, q.Brand)
	}
	if q.Name != "" {
		where, args = append(where, "name = ?"), append(args, q.Name)
	}
	query := "SELECT " + findingColumns + " FROM findings"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY first_seen DESC, id DESC"
	if q.Limit > 0 {
		query += " LIMIT " + strconv.Itoa(q.Limit)
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	defer rows.Close()
	var out []watcher.Finding
	for rows.Next() {
		var f watcher.Finding
		var verdict, reasons string
		var first, last, ctSeen, notBefore, notAfter int64
		var enrichment, revised string
		if err := rows.Scan(&f.Domain, &f.Unicode, &f.Registrable, &f.Brand, &f.Score, &verdict, &reasons,
			&f.RulesVersion, &first, &last, &f.CertCount, &ctSeen, &f.Cert.LogName, &f.Cert.LogURL, &f.Cert.Index,
			&f.Cert.Link, &f.Cert.Issuer, &notBefore, &notAfter, &f.Cert.Fingerprint, &enrichment, &revised); err != nil {
			return nil, fmt.Errorf("%s: %w", s.path, err)
		}
		if enrichment != "" {
			f.Enrichment = &watcher.Enrichment{}
			if err := json.Unmarshal([]byte(enrichment), f.Enrichment); err != nil {
				return nil, fmt.Errorf("%s: finding %s has unreadable enrichment: %w", s.path, f.Domain, err)
			}
		}
		if revised != "" {
			f.Revised = &rules.Result{}
			if err := json.Unmarshal([]byte(revised), f.Revised); err != nil {
				return nil, fmt.Errorf("%s: finding %s has an unreadable revised score: %w", s.path, f.Domain, err)
			}
		}
		f.Verdict = rules.Verdict(verdict)
		if err := json.Unmarshal([]byte(reasons), &f.Reasons); err != nil {
			return nil, fmt.Errorf("%s: finding %s has unreadable reasons: %w", s.path, f.Domain, err)
		}
		f.FirstSeen, f.LastSeen = fromMillis(first), fromMillis(last)
		f.CTSeen = fromMillis(ctSeen)
		if notBefore != 0 {
			f.Cert.NotBefore = time.Unix(notBefore, 0).UTC()
		}
		if notAfter != 0 {
			f.Cert.NotAfter = time.Unix(notAfter, 0).UTC()
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Brands lists the brands of the stored findings (as scored; a custom rule file may add some).
func (s *SQLite) Brands(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT brand FROM findings WHERE brand != '' ORDER BY brand`)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// DailyCounts returns the per-day totals, oldest first.
func (s *SQLite) DailyCounts(ctx context.Context) ([]DayCounts, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT day, messages, names, findings, dropped FROM daily_counts ORDER BY day`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DayCounts
	for rows.Next() {
		var d DayCounts
		if err := rows.Scan(&d.Day, &d.Messages, &d.Names, &d.Findings, &d.Dropped); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DayCounts are one UTC day's totals.
type DayCounts struct {
	Day string
	Counts
}

// Check runs SQLite's integrity check; "ok" means the file is sound.
func (s *SQLite) Check(ctx context.Context) (string, error) {
	var res string
	err := s.db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res)
	return res, err
}

// QuickCheck runs SQLite's quick_check (the page and index structure, without comparing every
// index with its table), so a damaged file is found when a command starts, not when storing
// the first finding fails. It returns an error wrapping ErrCorrupt naming the file.
func (s *SQLite) QuickCheck(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		return s.explain(err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return s.explain(err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return s.explain(err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s failed its check (%s); restore it from a backup, or move it aside to start a new one",
			ErrCorrupt, s.path, strings.Join(problems, "; "))
	}
	return nil
}

func (s *SQLite) Close() error {
	// A checkpoint folds the WAL into the main file so a copied .db is complete on its own.
	_, _ = s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return s.db.Close()
}
