package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/helpwatch/helpwatch/rules"
)

// The rule set belongs to the deployment, not to a process: the database records which rule
// file is active (its text, version and hash, who made it active and when), and every process
// that opens the database scores with it. A team's label, a worker on another machine and the
// ingest can then never score one case with three rule files.
//
// The rows of rule_sets are a history: the one with the highest seq is the active set.

// RuleSetRecord is one rule set a deployment made active.
type RuleSetRecord struct {
	Seq     int64
	Version string
	Hash    string // SHA-256 of Text, hex
	Builtin bool   // the embedded default rules of the helpwatch that recorded it
	Source  string // the file it was read from, as given
	Text    []byte
	By      string
	At      time.Time
}

func (r *RuleSetRecord) short() string {
	h := r.Hash
	if len(h) > 12 {
		h = h[:12]
	}
	return fmt.Sprintf("%s (sha256 %s)", r.Version, h)
}

// RulesMismatchError is returned by Open when the process was given a rule set other than the
// deployment's active one: scoring with it would rescore cases with rules nobody chose.
type RulesMismatchError struct {
	DB     string
	Active RuleSetRecord
	Given  *rules.RuleSet
}

func (e *RulesMismatchError) Error() string {
	given := &RuleSetRecord{Version: e.Given.Version, Hash: e.Given.Hash}
	return fmt.Sprintf("%s: the deployment's active rule set is %s, made active %s by %s; this process was given %s",
		e.DB, e.Active.short(), e.Active.At.Format(time.RFC3339), e.Active.By, given.short())
}

// rulesRecheck is how often a running process looks whether another one made a new rule set
// active (rules use): within this time every process scores with it.
const rulesRecheck = 10 * time.Second

// activeRules is the rule set this store scores with, and the record it came from.
type activeRules struct {
	rs  *rules.RuleSet
	seq int64
}

// ruleState is the store's view of the deployment's rule set.
type ruleState struct {
	cur     atomic.Pointer[activeRules]
	checked atomic.Int64  // Unix ms of the last look at rule_sets
	recheck time.Duration // 0: rulesRecheck (tests shorten it)
}

// Rules is the deployment's active rule set, which the store scores cases with. A process
// notices within rulesRecheck that another one made a new set active.
func (s *SQL) Rules() (*rules.RuleSet, error) {
	cur := s.rules.cur.Load()
	if cur == nil {
		// Only before Open resolved the rule set (no migration scores or normalizes with
		// rules): the built-in rules.
		return rules.Default()
	}
	every := s.rules.recheck
	if every == 0 {
		every = rulesRecheck
	}
	now := time.Now().UnixMilli()
	if last := s.rules.checked.Load(); now-last >= every.Milliseconds() && s.rules.checked.CompareAndSwap(last, now) {
		if rec, err := s.activeRuleSet(context.Background()); err == nil && rec != nil && rec.Seq != cur.seq {
			if rs, err := rec.load(); err == nil {
				next := &activeRules{rs: rs, seq: rec.Seq}
				s.rules.cur.CompareAndSwap(cur, next)
				cur = next
			}
		}
	}
	return cur.rs, nil
}

// ActiveRuleSet returns the record of the deployment's active rule set (nil when none was
// recorded yet).
func (s *SQL) ActiveRuleSet(ctx context.Context) (*RuleSetRecord, error) {
	return s.activeRuleSet(ctx)
}

// RuleSetHistory returns every rule set the deployment made active, oldest first.
func (s *SQL) RuleSetHistory(ctx context.Context) ([]RuleSetRecord, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+ruleSetColumns+` FROM rule_sets ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	defer rows.Close()
	var out []RuleSetRecord
	for rows.Next() {
		r, err := scanRuleSet(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

const ruleSetColumns = `seq, version, hash, builtin, source, content, activated_at, activated_by`

func scanRuleSet(row interface{ Scan(...any) error }) (*RuleSetRecord, error) {
	var r RuleSetRecord
	var builtin, at int64
	if err := row.Scan(&r.Seq, &r.Version, &r.Hash, &builtin, &r.Source, &r.Text, &at, &r.By); err != nil {
		return nil, err
	}
	r.Builtin, r.At = builtin != 0, fromMillis(at)
	return &r, nil
}

func (s *SQL) activeRuleSet(ctx context.Context) (*RuleSetRecord, error) {
	r, err := scanRuleSet(s.read.QueryRowContext(ctx, `SELECT `+ruleSetColumns+` FROM rule_sets ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: reading the active rule set: %w", s.path, s.explain(err))
	}
	return r, nil
}

// load compiles the recorded rule file.
func (r *RuleSetRecord) load() (*rules.RuleSet, error) {
	if r.Builtin {
		if def, err := rules.Default(); err == nil && def.Hash == r.Hash {
			return def, nil
		}
	}
	rs, err := rules.Parse(r.Text, r.Source+" (as recorded in the database)")
	if err != nil {
		return nil, fmt.Errorf("the deployment's active rule set %s no longer loads with this helpwatch: %w", r.short(), err)
	}
	rs.Builtin = r.Builtin
	return rs, nil
}

// resolveRules decides, once the schema is up to date, which rule set this store scores with:
//   - no rule set recorded yet (a new database, or one made before rule sets were recorded):
//     the one the process was given, else the built-in rules, recorded as the active set;
//   - Options.Activate: the given set becomes the active one (recorded unless it already is);
//   - a given set other than the active one: RulesMismatchError;
//   - none given: the active set; when that is the built-in rules of another helpwatch
//     version, this helpwatch's built-in rules become active (the deployment follows the
//     built-in rules until someone chooses a file).
func (s *SQL) resolveRules(ctx context.Context) error {
	if err := s.chooseActiveRules(ctx); err != nil {
		return err
	}
	if s.rescoreAfterMigrations {
		if _, err := s.Rescore(ctx); err != nil {
			return fmt.Errorf("%s: scoring the migrated cases: %w", s.path, err)
		}
		s.rescoreAfterMigrations = false
	}
	return nil
}

func (s *SQL) chooseActiveRules(ctx context.Context) error {
	given := s.opts.Rules
	for attempt := 0; ; attempt++ {
		active, err := s.activeRuleSet(ctx)
		if err != nil {
			return err
		}
		want, record, err := s.chooseRules(active, given)
		if err != nil {
			return err
		}
		if !record {
			s.rules.cur.Store(&activeRules{rs: want, seq: active.Seq})
			s.rules.checked.Store(time.Now().UnixMilli())
			return nil
		}
		seq, err := s.recordRuleSet(ctx, want)
		if err != nil {
			// Two processes recording at once: the loser reads what the winner recorded.
			if attempt < 3 {
				continue
			}
			return fmt.Errorf("%s: recording the active rule set: %w", s.path, err)
		}
		s.rules.cur.Store(&activeRules{rs: want, seq: seq})
		s.rules.checked.Store(time.Now().UnixMilli())
		return nil
	}
}

// chooseRules is resolveRules' decision: the rule set to score with, and whether it must be
// recorded as the new active set.
func (s *SQL) chooseRules(active *RuleSetRecord, given *rules.RuleSet) (*rules.RuleSet, bool, error) {
	def, err := rules.Default()
	if err != nil {
		return nil, false, err
	}
	switch {
	case active == nil && given == nil:
		return def, true, nil
	case active == nil:
		return given, true, nil
	case given != nil && given.Hash == active.Hash:
		return given, false, nil
	case given != nil && s.opts.Activate:
		return given, true, nil
	case given != nil:
		return nil, false, &RulesMismatchError{DB: s.path, Active: *active, Given: given}
	case active.Builtin && active.Hash != def.Hash:
		return def, true, nil
	}
	rs, err := active.load()
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", s.path, err)
	}
	return rs, false, nil
}

// recordRuleSet appends rs to the history as the active set. seq is unique, so of two
// processes recording at once one fails and reads the other's.
func (s *SQL) recordRuleSet(ctx context.Context, rs *rules.RuleSet) (int64, error) {
	var seq int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		// Two processes opening a new database together both find no rule set: the second one
		// finds the first's record here (the transaction serializes them) and adds nothing.
		var latest string
		err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM rule_sets ORDER BY seq DESC LIMIT 1`).Scan(&seq, &latest)
		switch {
		case err == nil && latest == rs.Hash:
			return nil
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		seq++
		builtin := 0
		if rs.Builtin {
			builtin = 1
		}
		source := "default_rules.yaml (built in)"
		if !rs.Builtin {
			source = rs.SourceName
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO rule_sets (`+ruleSetColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			seq, rs.Version, rs.Hash, builtin, source, rs.Text, time.Now().UnixMilli(), s.actor())
		return err
	})
	return seq, err
}

// actor is who a recorded change is attributed to.
func (s *SQL) actor() string {
	if s.opts.By != "" {
		return s.opts.By
	}
	return "unknown"
}
