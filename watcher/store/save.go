package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
)

// save stores a batch in phases, each a set of statements that need nothing from one another
// (one round trip each on PostgreSQL), in this order:
//
//  1. collect: the batch's distinct names, its log positions;
//  2. touchKnownNames: known names move their last sighting and give their case;
//  3. createCases: the new names' cases, created or found;
//  4. insertNewNames: the new names, under their cases;
//  5. countCertificates: each certificate once per name and once per case;
//  6. touchAndQueueCases: the cases' times and counts, and jobs for cases with new names;
//  7. scoreCases: new and changed cases scored, the created ones returned;
//  8. recordPositionsAndCounts: the CT positions and the day's totals.
//
// Rows are locked in one order (names by name, cases by registrable or id) whatever the
// batch's order, so that two ingest processes writing at once do not deadlock.
func (s *SQL) save(ctx context.Context, tx *phaseTx, batch []Sighting, counts Counts) ([]watcher.Case, error) {
	rs, err := s.Rules()
	if err != nil {
		return nil, err
	}
	b := &saveRun{s: s, ctx: ctx, tx: tx, rs: rs, batch: batch}
	b.collect()
	for _, phase := range []func() error{
		func() error { return b.touchKnownNames(b.sorted) },
		b.createCases,
		b.insertNewNames,
		b.countCertificates,
		b.touchAndQueueCases,
	} {
		if err := phase(); err != nil {
			return nil, err
		}
	}
	created, err := b.scoreCases()
	if err != nil {
		return nil, err
	}
	return created, b.recordPositionsAndCounts(len(created), counts)
}

// saveRun is one batch being saved: what each phase learns for the next.
type saveRun struct {
	s     *SQL
	ctx   context.Context
	tx    *phaseTx
	rs    *rules.RuleSet
	batch []Sighting
	p     phase

	positions []watcher.LogPosition
	names     []*batchName // in batch order
	sorted    []*batchName // by name: the lock order
	nameOf    []*batchName // per sighting (nil for a log position)

	caseIDs   map[string]int64     // registrable -> case id, for the new names' cases
	createdBy map[int64]*batchName // case created by this batch -> its first name
	touched   map[int64]*caseTouch
	order     []int64 // the touched cases in the order the batch first touched each

	certsPerName, certsPerCase map[int64]int
}

// collect reads the batch into its distinct names and its log positions.
func (b *saveRun) collect() {
	byName := map[string]*batchName{}
	b.nameOf = make([]*batchName, len(b.batch))
	for i := range b.batch {
		sg := &b.batch[i]
		if sg.Position != nil {
			b.positions = append(b.positions, *sg.Position)
			continue
		}
		name, wildcard := rules.Canonical(sg.Result.Domain)
		at := millis(sg.At)
		if n := byName[name]; n != nil {
			b.nameOf[i] = n
			n.lastAt = max(n.lastAt, at)
			n.wildcard = n.wildcard || wildcard
			continue
		}
		ct := millis(sg.CTSeen)
		if ct == 0 {
			ct = at
		}
		registrable := sg.Result.Registrable
		if registrable == "" {
			registrable = name
		}
		n := &batchName{name: name, registrable: registrable, first: i, sg: sg, at: at, ct: ct, lastAt: at, wildcard: wildcard}
		byName[name] = n
		b.nameOf[i] = n
		b.names = append(b.names, n)
	}
	b.sorted = slices.Clone(b.names)
	sort.Slice(b.sorted, func(i, j int) bool { return b.sorted[i].name < b.sorted[j].name })
}

// touchKnownNames moves the last sighting of the names of list that are stored, and learns
// their ids and cases. Most sightings are of known names: one update each.
func (b *saveRun) touchKnownNames(list []*batchName) error {
	for _, n := range list {
		b.p.QueryRow(touchNameQuery, func(scan func(...any) error) error {
			switch err := scan(&n.id, &n.caseID); {
			case err == nil:
				n.known = true
			case !errors.Is(err, sql.ErrNoRows):
				return fmt.Errorf("%s: storing %s: %w", b.s.path, n.name, err)
			}
			return nil
		}, n.lastAt, boolInt(n.wildcard), n.name)
	}
	return b.tx.run(b.ctx, &b.p)
}

// createCases creates the new names' cases with the first new name's score (a new case's
// score is its one name's, ScoreCase of a case with no other fact; settled in scoreCases when
// the batch gives it more names), or finds them when they exist.
func (b *saveRun) createCases() error {
	b.caseIDs, b.createdBy = map[string]int64{}, map[int64]*batchName{}
	var newRegs, existing []string
	firstNew := map[string]*batchName{}
	for _, n := range b.names {
		if !n.known && firstNew[n.registrable] == nil {
			firstNew[n.registrable] = n
			newRegs = append(newRegs, n.registrable)
		}
	}
	sort.Strings(newRegs)
	for _, reg := range newRegs {
		n := firstNew[reg]
		r := &n.sg.Result
		result, err := json.Marshal(r)
		if err != nil {
			return err
		}
		n.result = string(result)
		score := *r
		score.Domain, score.Registrable = n.name, reg
		if score.RulesVersion != b.rs.Version {
			score = b.rs.ScoreCase(&rules.CaseFacts{Registrable: reg, Names: []string{n.name}})
		}
		scoreJSON := n.result
		if score.RulesVersion != r.RulesVersion || score.Registrable != r.Registrable || score.Domain != r.Domain {
			data, _ := json.Marshal(&score)
			scoreJSON = string(data)
		}
		b.p.QueryRow(insertCaseQuery, func(scan func(...any) error) error {
			var id int64
			switch err := scan(&id); {
			case err == nil:
				b.caseIDs[reg] = id
				b.createdBy[id] = n
			case errors.Is(err, sql.ErrNoRows):
				existing = append(existing, reg)
			default:
				return fmt.Errorf("%s: storing case %s: %w", b.s.path, reg, err)
			}
			return nil
		}, reg, score.Brand, strings.ToLower(score.Brand), score.Score, string(score.Verdict), scoreJSON, score.RulesVersion, n.ct, n.at, score.Points())
	}
	if err := b.tx.run(b.ctx, &b.p); err != nil {
		return err
	}
	for _, reg := range existing {
		b.p.QueryRow(`SELECT id FROM cases WHERE registrable = $1`, func(scan func(...any) error) error {
			var id int64
			if err := scan(&id); err != nil {
				return fmt.Errorf("%s: finding case %s: %w", b.s.path, reg, err)
			}
			b.caseIDs[reg] = id
			return nil
		}, reg)
	}
	return b.tx.run(b.ctx, &b.p)
}

// insertNewNames stores the new names under their cases. One that another writer stored since
// touchKnownNames (two ingest processes see the same name in two logs) is touched as a known
// name instead.
func (b *saveRun) insertNewNames() error {
	var raced []*batchName
	for _, n := range b.sorted {
		if n.known {
			continue
		}
		if n.result == "" {
			result, err := json.Marshal(&n.sg.Result)
			if err != nil {
				return err
			}
			n.result = string(result)
		}
		n.caseID = b.caseIDs[n.registrable]
		c := &n.sg.Cert
		b.p.QueryRow(insertNameQuery, func(scan func(...any) error) error {
			switch err := scan(&n.id); {
			case errors.Is(err, sql.ErrNoRows):
				raced = append(raced, n)
			case err != nil:
				return fmt.Errorf("%s: storing %s: %w", b.s.path, n.name, err)
			}
			return nil
		}, n.caseID, n.name, boolInt(n.wildcard), n.sg.Result.Unicode, n.result, n.ct, n.at, c.LogName, c.LogURL, c.Index, c.Link,
			c.Issuer, unixOrZero(c.NotBefore), unixOrZero(c.NotAfter), c.Fingerprint, c.Serial, n.lastAt)
	}
	if err := b.tx.run(b.ctx, &b.p); err != nil {
		return err
	}
	if len(raced) > 0 {
		if err := b.touchKnownNames(raced); err != nil {
			return err
		}
		for _, n := range raced {
			if !n.known {
				return fmt.Errorf("%s: storing %s: the name is neither stored nor storable", b.s.path, n.name)
			}
		}
	}
	b.groupByCase()
	return nil
}

// groupByCase gathers what the batch changes per case, in the order the batch first touched
// each; the first name of a case created here is recorded as its first.
func (b *saveRun) groupByCase() {
	b.touched = map[int64]*caseTouch{}
	for _, n := range b.names {
		t := b.touched[n.caseID]
		if t == nil {
			t = &caseTouch{ctSeen: n.ct, order: n.first}
			b.touched[n.caseID] = t
		}
		t.lastSeen = max(t.lastSeen, n.lastAt)
		if n.known {
			continue
		}
		t.newNames = true
		t.ctSeen = min(t.ctSeen, n.ct)
		if by := b.createdBy[n.caseID]; by != nil {
			t.created = true
			t.names = append(t.names, watcher.CaseName{Name: n.name, Wildcard: n.wildcard, Unicode: n.sg.Result.Unicode, Score: n.sg.Result,
				CTSeen: fromMillis(n.ct), FirstSeen: n.sg.At.UTC(), LastSeen: fromMillis(n.lastAt).UTC(), Cert: n.sg.Cert})
			if by == n {
				b.p.Exec(setFirstNameQuery, nil, n.id, n.caseID)
			}
		}
	}
	b.order = make([]int64, 0, len(b.touched))
	for id := range b.touched {
		b.order = append(b.order, id)
	}
	sort.Slice(b.order, func(i, j int) bool { return b.touched[b.order[i]].order < b.touched[b.order[j]].order })
}

// countCertificates counts each certificate once per name and once per case, however often
// the batch (or an earlier one) carried it.
func (b *saveRun) countCertificates() error {
	b.certsPerName, b.certsPerCase = map[int64]int{}, map[int64]int{}
	type certOf struct {
		id  int64
		key string
	}
	type certAdd struct {
		certOf
		at int64
	}
	seenName, seenCase := map[certOf]bool{}, map[certOf]bool{}
	var nameCerts, caseCerts []certAdd
	for i := range b.batch {
		n := b.nameOf[i]
		if n == nil {
			continue // a log position
		}
		key := certKey(&b.batch[i].Cert)
		if key == "" {
			continue
		}
		at := millis(b.batch[i].At)
		if k := (certOf{n.id, key}); !seenName[k] {
			seenName[k] = true
			nameCerts = append(nameCerts, certAdd{k, at})
		}
		if k := (certOf{n.caseID, key}); !seenCase[k] {
			seenCase[k] = true
			caseCerts = append(caseCerts, certAdd{k, at})
		}
	}
	byKey := func(list []certAdd) {
		sort.Slice(list, func(i, j int) bool {
			return list[i].id < list[j].id || list[i].id == list[j].id && list[i].key < list[j].key
		})
	}
	byKey(nameCerts)
	byKey(caseCerts)
	for _, c := range nameCerts {
		b.p.Exec(addNameCertQuery, func(rows int64) error {
			if rows == 1 {
				b.certsPerName[c.id]++
			}
			return nil
		}, c.id, c.key, c.at)
	}
	for _, c := range caseCerts {
		b.p.Exec(addCaseCertQuery, func(rows int64) error {
			if rows == 1 {
				b.certsPerCase[c.id]++
			}
			return nil
		}, c.id, c.key, c.at)
	}
	if err := b.tx.run(b.ctx, &b.p); err != nil {
		return err
	}
	for _, n := range b.names {
		if c := b.certsPerName[n.id]; c > 0 {
			b.p.Exec(countNameCertsQuery, nil, c, n.id)
			if t := b.touched[n.caseID]; t.created {
				for j := range t.names {
					if t.names[j].Name == n.name {
						t.names[j].CertCount += c
					}
				}
			}
		}
	}
	return nil
}

// touchAndQueueCases moves each touched case's times and certificate count, and queues every
// registered job kind that a new name asks for (at most one pending per case and kind).
func (b *saveRun) touchAndQueueCases() error {
	now := b.s.now()
	byID := slices.Clone(b.order)
	slices.Sort(byID)
	for _, id := range byID {
		t := b.touched[id]
		b.p.Exec(touchCaseQuery, nil, t.lastSeen, t.ctSeen, b.certsPerCase[id], id)
		if t.newNames {
			for _, k := range jobs.All {
				if k.OnNewName {
					b.p.Exec(enqueueQuery, nil, k.Name, id, k.After, k.MaxAttempts, now.UnixMilli())
				}
			}
		}
	}
	return b.tx.run(b.ctx, &b.p)
}

// scoreCases scores the cases whose facts the batch changed and returns the cases it created,
// in batch order. A new case of one name already has its score; one of several names is
// scored from its names; a known case with a new name, and a new case an analyst labeled
// before it existed (rare), are rescored from the store.
func (b *saveRun) scoreCases() ([]watcher.Case, error) {
	s, ctx, tx := b.s, b.ctx, b.tx
	labeled, err := s.labeledAmong(ctx, tx, b.touched, b.caseIDs)
	if err != nil {
		return nil, err
	}
	var dirty []int64
	created := make([]watcher.Case, 0, 4)
	for _, id := range b.order {
		t := b.touched[id]
		switch {
		case t.created && labeled[id]:
			if err := s.applyLatestLabel(ctx, tx, id); err != nil {
				return nil, err
			}
			dirty = append(dirty, id)
		case t.created && len(t.names) > 1:
			args, err := newCaseScore(b.rs, t)
			if err != nil {
				return nil, err
			}
			b.p.Exec(rescoreUpdate, nil, append(args, id)...)
		case !t.created && t.newNames:
			dirty = append(dirty, id)
		}
		if t.created && !labeled[id] {
			created = append(created, newCase(b.rs, t, b.certsPerCase[id], b.createdBy[id].registrable))
		}
	}
	if err := tx.run(ctx, &b.p); err != nil {
		return nil, err
	}
	if err := s.rescore(ctx, tx, dirty); err != nil {
		return nil, err
	}
	for _, id := range dirty {
		if b.touched[id].created {
			c, ok, err := s.caseByID(ctx, tx, id)
			if err != nil {
				return nil, err
			}
			if ok {
				created = append(created, *c)
			}
		}
	}
	sort.SliceStable(created, func(i, j int) bool {
		return b.touched[b.caseIDs[created[i].Registrable]].order < b.touched[b.caseIDs[created[j].Registrable]].order
	})
	return created, nil
}

// recordPositionsAndCounts writes the CT log positions the batch reached, in the same
// transaction as the findings of the entries before them, and adds the run's counters and the
// cases created to today's totals.
func (b *saveRun) recordPositionsAndCounts(created int, counts Counts) error {
	if err := saveLogPositions(b.ctx, b.tx.Tx, b.positions, b.s.now()); err != nil {
		return err
	}
	counts.Findings = int64(created)
	if counts == (Counts{}) {
		return nil
	}
	day := b.s.now().UTC().Format(time.DateOnly)
	_, err := b.tx.ExecContext(b.ctx, `INSERT INTO daily_counts (day, messages, names, findings, dropped) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (day) DO UPDATE SET messages = daily_counts.messages + excluded.messages, names = daily_counts.names + excluded.names,
		findings = daily_counts.findings + excluded.findings, dropped = daily_counts.dropped + excluded.dropped`,
		day, counts.Messages, counts.Names, counts.Findings, counts.Dropped)
	return err
}
