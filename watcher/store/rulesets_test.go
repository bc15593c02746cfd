package store

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
)

func customRuleSet(t *testing.T, version string, alert int) *rules.RuleSet {
	t.Helper()
	def, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(rules.DefaultRulesYAML()), `version: "`+def.Version+`"`, `version: "`+version+`"`, 1)
	text = strings.Replace(text, "  alert: 50 ", "  alert: "+strconv.Itoa(alert)+" ", 1)
	rs, err := rules.Parse([]byte(text), version+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// The first process records its rule set; later processes without one score with it, a
// process given another one is refused, Activate switches, and a running store follows.
func TestRuleSetIsTheDeployments(t *testing.T) {
	ctx := context.Background()
	first, where := openTemp(t)
	first.Close()
	custom := customRuleSet(t, "custom-1", 99)
	// openTemp recorded the built-in rules; make custom-1 active as a team would.
	a, err := Open(ctx, where, Options{Rules: custom, Activate: true, By: "alice@host"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.rules.recheck = time.Nanosecond
	if rs, _ := a.Rules(); rs.Version != "custom-1" {
		t.Fatalf("activating store scores with %s", rs.Version)
	}

	b, err := Open(ctx, where)
	if err != nil {
		t.Fatal(err)
	}
	if rs, _ := b.Rules(); rs.Version != "custom-1" || rs.Alert != 99 {
		t.Fatalf("a store opened without rules scores with %s (alert %d), want the deployment's custom-1", rs.Version, rs.Alert)
	}
	b.Close()

	other := customRuleSet(t, "custom-2", 90)
	_, err = Open(ctx, where, Options{Rules: other})
	var mm *RulesMismatchError
	if !errors.As(err, &mm) || mm.Active.Version != "custom-1" || mm.Given.Version != "custom-2" || mm.Active.By != "alice@host" {
		t.Fatalf("another rule set: %v", err)
	}
	if !strings.Contains(err.Error(), "custom-1") || !strings.Contains(err.Error(), "custom-2") {
		t.Errorf("the refusal names both versions: %v", err)
	}
	// The same version with other content is another rule set.
	same := customRuleSet(t, "custom-1", 98)
	if _, err := Open(ctx, where, Options{Rules: same}); !errors.As(err, &mm) {
		t.Fatalf("same version, other content: %v", err)
	}

	c, err := Open(ctx, where, Options{Rules: other, Activate: true, By: "bob@host"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	// The running store follows the new active set.
	if rs, _ := a.Rules(); rs.Version != "custom-2" || rs.Alert != 90 {
		t.Fatalf("a running store still scores with %s after another activated custom-2", rs.Version)
	}
	hist, err := a.RuleSetHistory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[1].Version != "custom-1" || hist[2].Version != "custom-2" || hist[2].By != "bob@host" ||
		!hist[0].Builtin || hist[1].Builtin || string(hist[2].Text) != string(other.Text) {
		t.Errorf("history: %+v", hist)
	}
}

// A deployment on the built-in rules follows them when helpwatch is upgraded.
func TestBuiltinRulesFollowTheBinary(t *testing.T) {
	ctx := context.Background()
	s, where := openTemp(t)
	def, _ := rules.Default()
	// Pretend an older helpwatch recorded its own built-in rules.
	if _, err := s.db.ExecContext(ctx, `UPDATE rule_sets SET hash = 'old', version = 'old-1'`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(ctx, where)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	active, err := s2.ActiveRuleSet(ctx)
	if err != nil || active.Hash != def.Hash || !active.Builtin || active.Seq != 2 {
		t.Fatalf("after the upgrade the active set is %+v, %v", active, err)
	}
}

// Processes that open a new SQLite file together (a findings while a watch creates it) each
// open it: the migrations run once, and the rule set is recorded once.
func TestOpenNewSQLiteFileTogether(t *testing.T) {
	sqliteOnly(t, "PostgreSQL has its own test under the advisory lock")
	for round := 0; round < 10; round++ {
		path := filepath.Join(t.TempDir(), "h.db")
		errs := make(chan error, 4)
		stores := make(chan *SQL, 4)
		for range 4 {
			go func() {
				s, err := Open(context.Background(), path)
				errs <- err
				stores <- s
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if s := <-stores; s != nil {
				defer s.Close()
			}
		}
		var n int
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		s.db.QueryRow(`SELECT COUNT(*) FROM rule_sets`).Scan(&n)
		s.Close()
		if n != 1 {
			t.Fatalf("round %d: %d rule sets recorded, want 1", round, n)
		}
	}
}

// The store stamps what it does itself with its clock (Options.Now): queued jobs, the day of
// the counts.
func TestStoreClock(t *testing.T) {
	_, where := openTemp(t)
	fixed := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	s, err := Open(context.Background(), where, Options{Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Save(context.Background(), []Sighting{sighting(t, "hp-printer-help-desk.com", time.Now(), "F1")}, Counts{Messages: 1}); err != nil {
		t.Fatal(err)
	}
	var created int64
	if err := s.db.QueryRow(`SELECT MIN(created_at) FROM jobs`).Scan(&created); err != nil || created != fixed.UnixMilli() {
		t.Errorf("jobs queued at %d (%v), want the store's clock %d", created, err, fixed.UnixMilli())
	}
	days, err := s.DailyCounts(context.Background())
	if err != nil || len(days) != 1 || days[0].Day != "2031-03-04" {
		t.Errorf("daily counts %+v, %v", days, err)
	}
}
