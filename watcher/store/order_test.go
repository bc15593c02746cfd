package store

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

// permutations calls f with every order of n items.
func permutations(n int, f func(order []int)) {
	var rec func(prefix []int, used []bool)
	rec = func(prefix []int, used []bool) {
		if len(prefix) == n {
			f(prefix)
			return
		}
		for i := 0; i < n; i++ {
			if !used[i] {
				used[i] = true
				rec(append(prefix, i), used)
				used[i] = false
			}
		}
	}
	rec(nil, make([]bool, n))
}

// The score of a case is a function of its stored facts: whatever order its enrichment, its
// site check, an analyst's label, a second name, and another case's site with the same phone
// number arrive in, the stored score is the same (property over all 120 orders).
func TestCaseScoreIsTheSameInEveryOrder(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	const a, b = "hp-printer-setup-help.com", "hp-setup-assist.net"
	enrichment := &watcher.Enrichment{Registrable: a, At: t0.Add(time.Hour),
		Registration: watcher.Registration{State: watcher.Found, Source: "rdap", Registrar: "Example Registrar, LLC", Created: t0.Add(-72 * time.Hour)},
		DNS:          []watcher.DNSFacts{{Name: a, State: watcher.Found, A: []string{"192.0.2.10"}, NS: []string{"ns1.example-dns.net"}, MX: []string{"mx.example"}}}}
	phone := []rules.SitePhone{{E164: "+18882157421", TollFree: true, Source: "tel"}}
	check := func(name string, score int) SiteCheck {
		return SiteCheck{Name: name, At: t0.Add(2 * time.Hour), URL: "https://" + name + "/", Status: 200, Verdict: rules.SiteClone, Score: score,
			Brand: "HP", Phones: phone, Reasons: []rules.Reason{{Rule: "site:fake-flow", Points: 35, Detail: "fake install flow"}}}
	}
	events := []struct {
		name string
		do   func(t *testing.T, s *SQL)
	}{
		{"enrichment", func(t *testing.T, s *SQL) {
			job := claimFor(t, s, KindEnrich, a)
			if err := s.SaveEnrichment(ctx, job, enrichment); err != nil {
				t.Fatal(err)
			}
		}},
		{"site check", func(t *testing.T, s *SQL) {
			job := claimFor(t, s, KindSite, a)
			if err := s.SaveSiteChecks(ctx, job, []SiteCheck{check(a, 80)}, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"label", func(t *testing.T, s *SQL) {
			if err := s.AddLabel(ctx, Label{Registrable: a, Label: rules.LabelScam, By: "jane", At: t0, Note: "kit seen before"}); err != nil {
				t.Fatal(err)
			}
		}},
		{"second name", func(t *testing.T, s *SQL) {
			if _, err := s.Save(ctx, []Sighting{sighting(t, "www."+a, t0, "W")}, Counts{}); err != nil {
				t.Fatal(err)
			}
		}},
		{"other case's site", func(t *testing.T, s *SQL) {
			job := claimFor(t, s, KindSite, b)
			if err := s.SaveSiteChecks(ctx, job, []SiteCheck{check(b, 70)}, time.Time{}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	var want string
	var wantOrder []int
	runs := 0
	permutations(len(events), func(order []int) {
		s, _ := openTemp(t)
		if _, err := s.Save(ctx, []Sighting{sighting(t, a, t0, "A"), sighting(t, b, t0, "B")}, Counts{}); err != nil {
			t.Fatal(err)
		}
		for _, i := range order {
			events[i].do(t, s)
		}
		got, _ := json.Marshal(caseOf(t, s, a).Score)
		s.Close()
		runs++
		if want == "" {
			want, wantOrder = string(got), append([]int(nil), order...)
			return
		}
		if string(got) != want {
			t.Fatalf("order %v gives\n%s\norder %v gave\n%s", names(events, order), got, names(events, wantOrder), want)
		}
	})
	if runs != 120 {
		t.Fatalf("%d orders tried", runs)
	}
	// And the facts are all in it.
	var score rules.Result
	json.Unmarshal([]byte(want), &score)
	for _, rule := range []string{rules.RuleRegisteredRecently, "site:clone", "site:known-phone", "label:scam"} {
		if !hasRule(score.Reasons, rule) {
			t.Errorf("the score lacks %s: %+v", rule, score.Reasons)
		}
	}
}

func names(events []struct {
	name string
	do   func(t *testing.T, s *SQL)
}, order []int) []string {
	out := make([]string, len(order))
	for i, o := range order {
		out[i] = events[o].name
	}
	return out
}

// claimFor claims the due job of kind for a case, whatever else is queued.
func claimFor(t testing.TB, s *SQL, kind, registrable string) *Job {
	t.Helper()
	jobs, err := s.ClaimJobs(context.Background(), "test-worker", []string{kind}, 100, time.Now(), time.Minute, false)
	if err != nil {
		t.Fatal(err)
	}
	var mine *Job
	for i := range jobs {
		if jobs[i].Registrable == registrable && mine == nil {
			mine = &jobs[i]
			continue
		}
		if err := s.ReleaseJob(context.Background(), &jobs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if mine == nil {
		t.Fatal(fmt.Sprintf("no %s job for %s", kind, registrable))
	}
	return mine
}
