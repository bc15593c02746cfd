package store

import (
	"context"
	"database/sql"
)

// sqliteMigrations are applied in order, each in its own transaction; the schema version is
// the number applied. Never edit a released migration: add the next one. 1 to 6 are the
// per-name schema of earlier versions, kept so their databases upgrade; 7 turns findings into
// cases and the two hand-written queues into one job queue.
var sqliteMigrations = []string{
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

	// 7: cases. A case is a registrable domain with its names; names are keyed by their
	// canonical spelling. Scores are derived and cached on the case. One job queue replaces
	// enrich_queue and site_queue; workers are the processes holding jobs. The old tables are
	// read by the Go step of this migration (casesFromFindings) and then dropped.
	`CREATE TABLE cases (
		id            INTEGER PRIMARY KEY,
		registrable   TEXT    NOT NULL UNIQUE,
		brand         TEXT    NOT NULL DEFAULT '',
		brand_key     TEXT    NOT NULL DEFAULT '', -- lower(brand), for filters
		score         INTEGER NOT NULL DEFAULT 0,
		verdict       TEXT    NOT NULL DEFAULT 'ignore',
		result        TEXT    NOT NULL DEFAULT '', -- JSON rules.Result: the derived score (a cache)
		rules_version TEXT    NOT NULL DEFAULT '',
		first_result  TEXT    NOT NULL DEFAULT '', -- JSON rules.Result: the strongest name when first seen
		ct_seen       INTEGER NOT NULL,            -- Unix ms: CT time of the first certificate
		first_seen    INTEGER NOT NULL,            -- Unix ms: helpwatch read it
		last_seen     INTEGER NOT NULL,
		cert_count    INTEGER NOT NULL DEFAULT 0,
		first_name_id INTEGER NOT NULL DEFAULT 0,  -- the name that brought the first certificate
		enrichment    TEXT    NOT NULL DEFAULT '', -- JSON watcher.Enrichment
		enriched_at   INTEGER NOT NULL DEFAULT 0,
		registrar     TEXT    NOT NULL DEFAULT '', -- from the enrichment, for listings
		registered    INTEGER NOT NULL DEFAULT 0,  -- Unix ms, from the enrichment
		site_verdict  TEXT    NOT NULL DEFAULT '', -- the strongest latest site verdict
		label         TEXT    NOT NULL DEFAULT '', -- JSON rules.CaseLabel: the latest label
		label_kind    TEXT    NOT NULL DEFAULT ''  -- its label alone, for filters
	);
	CREATE INDEX cases_ct_seen ON cases(ct_seen);
	CREATE INDEX cases_brand ON cases(brand_key, ct_seen);
	CREATE TABLE names (
		id          INTEGER PRIMARY KEY,
		case_id     INTEGER NOT NULL REFERENCES cases(id),
		name        TEXT    NOT NULL UNIQUE, -- canonical
		wildcard    INTEGER NOT NULL DEFAULT 0,
		unicode     TEXT    NOT NULL DEFAULT '',
		result      TEXT    NOT NULL, -- JSON rules.Result: the name's score when first seen
		ct_seen     INTEGER NOT NULL,
		first_seen  INTEGER NOT NULL,
		last_seen   INTEGER NOT NULL,
		cert_count  INTEGER NOT NULL DEFAULT 0,
		log_name    TEXT    NOT NULL DEFAULT '',
		log_url     TEXT    NOT NULL DEFAULT '',
		cert_index  INTEGER NOT NULL DEFAULT -1,
		cert_link   TEXT    NOT NULL DEFAULT '',
		issuer      TEXT    NOT NULL DEFAULT '',
		not_before  INTEGER NOT NULL DEFAULT 0,
		not_after   INTEGER NOT NULL DEFAULT 0,
		fingerprint TEXT    NOT NULL DEFAULT ''
	);
	CREATE INDEX names_case ON names(case_id);
	CREATE TABLE name_certificates (
		name_id  INTEGER NOT NULL,
		cert_key TEXT    NOT NULL,
		seen     INTEGER NOT NULL,
		PRIMARY KEY (name_id, cert_key)
	) WITHOUT ROWID;
	CREATE TABLE case_certificates (
		case_id  INTEGER NOT NULL,
		cert_key TEXT    NOT NULL,
		seen     INTEGER NOT NULL,
		PRIMARY KEY (case_id, cert_key)
	) WITHOUT ROWID;
	CREATE TABLE jobs (
		id           INTEGER PRIMARY KEY,
		kind         TEXT    NOT NULL, -- enrich, site
		case_id      INTEGER NOT NULL,
		run          INTEGER NOT NULL DEFAULT 0, -- site: the re-check number
		after_kind   TEXT    NOT NULL DEFAULT '', -- wait while a job of this kind is pending for the case
		state        TEXT    NOT NULL, -- queued, running, done, failed
		attempts     INTEGER NOT NULL DEFAULT 0,
		max_attempts INTEGER NOT NULL,
		retries      INTEGER NOT NULL DEFAULT 0,
		created_at   INTEGER NOT NULL,
		due_at       INTEGER NOT NULL,
		started_at   INTEGER NOT NULL DEFAULT 0,
		finished_at  INTEGER NOT NULL DEFAULT 0,
		owner        TEXT    NOT NULL DEFAULT '',
		lease_until  INTEGER NOT NULL DEFAULT 0,
		last_error   TEXT    NOT NULL DEFAULT '',
		errors       TEXT    NOT NULL DEFAULT '[]' -- JSON: the latest reasons, bounded
	);
	CREATE UNIQUE INDEX jobs_pending ON jobs(kind, case_id) WHERE state IN ('queued', 'running');
	CREATE INDEX jobs_due ON jobs(state, due_at);
	CREATE INDEX jobs_owner ON jobs(owner) WHERE state = 'running';
	CREATE TABLE workers (
		id        TEXT    PRIMARY KEY,
		host      TEXT    NOT NULL,
		pid       INTEGER NOT NULL,
		pid_start TEXT    NOT NULL, -- the process's start time, to tell a reused pid apart
		started   INTEGER NOT NULL,
		heartbeat INTEGER NOT NULL
	);
	ALTER TABLE site_checks ADD COLUMN case_id INTEGER NOT NULL DEFAULT 0;
	CREATE INDEX site_checks_case ON site_checks(case_id, name, id);
	CREATE TABLE site_links_new (
		kind       TEXT    NOT NULL,
		value      TEXT    NOT NULL,
		case_id    INTEGER NOT NULL,
		name       TEXT    NOT NULL,
		toll_free  INTEGER NOT NULL DEFAULT 0,
		flagged    INTEGER NOT NULL DEFAULT 0,
		first_seen INTEGER NOT NULL,
		PRIMARY KEY (kind, value, case_id, name)
	) WITHOUT ROWID;
	CREATE INDEX site_links_case ON site_links_new(case_id);
	ALTER TABLE labels ADD COLUMN registrable TEXT NOT NULL DEFAULT '';`,

	// 8: how far each CT log has been read, written with the findings of the entries before
	// it: the verified tree head, the next index, the RFC 6962 frontier (concatenated hashes)
	// and the entries read so far; and the certificate's serial number with each name (read
	// from the logs directly; certstream does not give it).
	`ALTER TABLE names ADD COLUMN serial TEXT NOT NULL DEFAULT '';
	CREATE TABLE ct_logs (
		log_id     TEXT    PRIMARY KEY,
		name       TEXT    NOT NULL,
		url        TEXT    NOT NULL,
		tree_size  INTEGER NOT NULL,
		root_hash  BLOB    NOT NULL,
		tree_time  INTEGER NOT NULL,
		next_index INTEGER NOT NULL,
		compact    BLOB    NOT NULL,
		entries    INTEGER NOT NULL DEFAULT 0,
		updated_at INTEGER NOT NULL
	);`,
	// 9: the queue's next due jobs of one kind read in order from an index, not sorted out of
	// every queued job (a claim stays cheap with a long queue).
	`CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(kind, due_at, id) WHERE state = 'queued';`,
	// 10: the deployment's rule sets, the latest (highest seq) active: every process scores
	// with it whatever file it was started with.
	`CREATE TABLE rule_sets (
		seq          INTEGER PRIMARY KEY,
		version      TEXT    NOT NULL,
		hash         TEXT    NOT NULL,
		builtin      INTEGER NOT NULL,
		source       TEXT    NOT NULL,
		content      BLOB    NOT NULL,
		activated_at INTEGER NOT NULL,
		activated_by TEXT    NOT NULL
	);`,
	// 11: every site check keeps its per-page evidence, chat accounts and kit with the rest.
	`ALTER TABLE site_checks ADD COLUMN pages TEXT NOT NULL DEFAULT '[]';
	ALTER TABLE site_checks ADD COLUMN chats TEXT NOT NULL DEFAULT '[]';
	ALTER TABLE site_checks ADD COLUMN kit TEXT NOT NULL DEFAULT '';`,
	// 12: captured evidence (content-addressed artefacts, never modified, and the captures
	// that refer to them), job references (a delivery job names its report), and the takedown
	// ladder of each abuse report: one report per case and destination, its state and every
	// step with who took it.
	`ALTER TABLE jobs ADD COLUMN ref INTEGER NOT NULL DEFAULT 0;
	DROP INDEX jobs_pending;
	CREATE UNIQUE INDEX jobs_pending ON jobs(kind, case_id, ref) WHERE state IN ('queued', 'running');
	CREATE TABLE artefacts (
		sha256     TEXT    PRIMARY KEY,
		media_type TEXT    NOT NULL,
		size       INTEGER NOT NULL,
		data       BLOB    NOT NULL,
		stored_at  INTEGER NOT NULL
	);
	CREATE TABLE captures (
		id          INTEGER PRIMARY KEY,
		case_id     INTEGER NOT NULL,
		name        TEXT    NOT NULL,
		captured_at INTEGER NOT NULL,
		verdict     TEXT    NOT NULL,
		bytes       INTEGER NOT NULL DEFAULT 0,
		evidence    TEXT    NOT NULL -- JSON: watcher.Capture
	);
	CREATE INDEX captures_case ON captures(case_id, captured_at);
	CREATE TABLE capture_artefacts (
		capture_id INTEGER NOT NULL,
		sha256     TEXT    NOT NULL,
		PRIMARY KEY (capture_id, sha256)
	);
	CREATE INDEX capture_artefacts_sha ON capture_artefacts(sha256);
	ALTER TABLE abuse_reports ADD COLUMN case_id INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE abuse_reports ADD COLUMN destination TEXT NOT NULL DEFAULT 'registrar';
	ALTER TABLE abuse_reports ADD COLUMN kind TEXT NOT NULL DEFAULT 'report';
	ALTER TABLE abuse_reports ADD COLUMN state TEXT NOT NULL DEFAULT 'drafted';
	ALTER TABLE abuse_reports ADD COLUMN follow_up_of INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE abuse_reports ADD COLUMN abuse_type TEXT NOT NULL DEFAULT '';
	ALTER TABLE abuse_reports ADD COLUMN state_at INTEGER NOT NULL DEFAULT 0;
	UPDATE abuse_reports SET state = 'sent', state_at = sent_at WHERE sent_at IS NOT NULL;
	UPDATE abuse_reports SET state = 'withdrawn', state_at = prepared_at WHERE sent_at IS NULL;
	CREATE INDEX abuse_reports_case ON abuse_reports(case_id, destination);
	CREATE TABLE report_events (
		report_id INTEGER NOT NULL,
		at        INTEGER NOT NULL,
		state     TEXT    NOT NULL,
		actor     TEXT    NOT NULL,
		note      TEXT    NOT NULL DEFAULT ''
	);
	CREATE INDEX report_events_report ON report_events(report_id, at);`,
	// 13: the console's accounts, their sessions (only a hash of each token is kept) and the
	// audit log of every change made through it; indexes for the queue's keyset pages.
	`CREATE TABLE users (
		name          TEXT    PRIMARY KEY,
		role          TEXT    NOT NULL,
		password_hash TEXT    NOT NULL,
		disabled      INTEGER NOT NULL DEFAULT 0,
		created_at    INTEGER NOT NULL,
		changed_at    INTEGER NOT NULL
	);
	CREATE TABLE sessions (
		token_hash TEXT    PRIMARY KEY,
		user_name  TEXT    NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);
	CREATE INDEX sessions_user ON sessions(user_name);
	CREATE TABLE audit_log (
		id      INTEGER PRIMARY KEY,
		at      INTEGER NOT NULL,
		actor   TEXT    NOT NULL,
		action  TEXT    NOT NULL,
		target  TEXT    NOT NULL DEFAULT '',
		detail  TEXT    NOT NULL DEFAULT '',
		address TEXT    NOT NULL DEFAULT ''
	);
	CREATE INDEX audit_log_target ON audit_log(target, at);
	CREATE INDEX cases_queue_new ON cases(ct_seen, id);
	ALTER TABLE cases ADD COLUMN points INTEGER NOT NULL DEFAULT 0; -- the reasons' points before the cap at 100: ranks
	UPDATE cases SET points = COALESCE((SELECT SUM(json_extract(r.value, '$.points')) FROM json_each(cases.result, '$.reasons') r), 0)
		WHERE json_valid(cases.result);
	CREATE INDEX cases_queue_score ON cases(points, id);
	CREATE INDEX cases_queue_verdict ON cases(verdict, ct_seen, id);`,
	// 14 (PostgreSQL 6): notifications, one per channel and event (the key makes a second copy of
	// an event a no-op, whichever process finds it), and where the event scans have got to.
	`CREATE TABLE notifications (
		id         INTEGER PRIMARY KEY,
		channel    TEXT   NOT NULL,
		event      TEXT   NOT NULL,
		event_key  TEXT   NOT NULL,
		case_id    INTEGER NOT NULL DEFAULT 0,
		payload    TEXT   NOT NULL,
		state      TEXT   NOT NULL,
		created_at INTEGER NOT NULL,
		sent_at    INTEGER NOT NULL DEFAULT 0,
		reply      TEXT   NOT NULL DEFAULT '',
		digest_id  INTEGER NOT NULL DEFAULT 0,
		UNIQUE (channel, event_key)
	);
	CREATE INDEX notifications_state ON notifications(channel, state, created_at);
	CREATE TABLE notify_cursors (
		source   TEXT   PRIMARY KEY,
		position INTEGER NOT NULL
	);`,
	// 15 (PostgreSQL 7): the look-alike sweep's candidates: whether each exists, and when to ask
	// again (a name not registered today may be tomorrow).
	`CREATE TABLE sweep_names (
		domain     TEXT   PRIMARY KEY,
		brand      TEXT   NOT NULL,
		kind       TEXT   NOT NULL,
		state      TEXT   NOT NULL,
		checked_at INTEGER NOT NULL DEFAULT 0,
		next_check INTEGER NOT NULL DEFAULT 0,
		found_at   INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX sweep_names_due ON sweep_names(next_check);`,
}

// sqliteSteps run after the SQL of their version, in the same transaction: steps SQL cannot
// express.
var sqliteSteps = map[int]func(ctx context.Context, s *SQL, tx *sql.Tx) error{
	6: func(ctx context.Context, _ *SQL, tx *sql.Tx) error { return cleanStoredCertificateFields(ctx, tx) },
	7: casesFromFindings,
}
