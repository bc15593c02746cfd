package rules

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func defaultRuleSet(t *testing.T) *RuleSet {
	t.Helper()
	rs, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestReviseWithFacts(t *testing.T) {
	rs := defaultRuleSet(t)
	sc := rs.NewScorer()
	first := sc.Score("hp-printer-help.com")
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	rules := func(r Result) string {
		var out []string
		for _, re := range r.Reasons[len(first.Reasons):] {
			out = append(out, re.Rule)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name  string
		facts Facts
		want  string
		delta int
	}{
		{"new, live, mail", Facts{Now: now, Registered: now.Add(-3 * 24 * time.Hour), DNSKnown: true, Resolves: true, HasNS: true, HasMX: true}, "registered-recently mail-exchanger", 25},
		{"old registration", Facts{Now: now, Registered: now.AddDate(-6, 0, 0), DNSKnown: true, Resolves: true, HasNS: true}, "registered-long-ago", -15},
		{"middle age scores nothing", Facts{Now: now, Registered: now.AddDate(-1, 0, 0), DNSKnown: true, Resolves: true, HasNS: true}, "", 0},
		{"no DNS", Facts{Now: now, DNSKnown: true}, "no-dns", -10},
		{"DNS unknown says nothing", Facts{Now: now}, "", 0},
		{"parked wildcard", Facts{Now: now, DNSKnown: true, Resolves: true, HasNS: true, CatchAll: true, ParkedBy: "sedoparking.com"}, "parked", -15},
		{"catch-all", Facts{Now: now, DNSKnown: true, Resolves: true, HasNS: true, CatchAll: true}, "catch-all-dns", 5},
	} {
		got := rs.Revise(&first, tc.facts)
		if rules(got) != tc.want {
			t.Errorf("%s: added %q, want %q", tc.name, rules(got), tc.want)
		}
		raw := 0
		for _, re := range first.Reasons {
			raw += re.Points
		}
		if want := min(max(raw+tc.delta, 0), 100); got.Score != want {
			t.Errorf("%s: score %d, want %d", tc.name, got.Score, want)
		}
	}
	// The first result is untouched, and reasons add up to the revised score.
	before := first.Score
	low := sc.Score("hp-printer-help.com")
	revised := rs.Revise(&low, Facts{Now: now, Registered: now.AddDate(-10, 0, 0), DNSKnown: true, HasNS: true, ParkedBy: "bodis.com", Resolves: true})
	if first.Score != before || len(low.Reasons) == len(revised.Reasons) {
		t.Errorf("Revise changed its input or added nothing")
	}
	sum := 0
	for _, re := range revised.Reasons {
		sum += re.Points
	}
	if min(max(sum, 0), 100) != revised.Score {
		t.Errorf("reasons sum to %d, score %d", sum, revised.Score)
	}
	if revised.Score < low.Score && revised.Verdict.Rank() > low.Verdict.Rank() {
		t.Errorf("verdict rose while score fell")
	}
	// Brand-owned names stay as they are.
	owned := sc.Score("support.hp.com")
	if got := rs.Revise(&owned, Facts{Now: now, DNSKnown: true}); len(got.Reasons) != len(owned.Reasons) {
		t.Errorf("brand-owned name was revised: %+v", got.Reasons)
	}
}

func TestParkingService(t *testing.T) {
	rs := defaultRuleSet(t)
	if got := rs.ParkingService([]string{"NS1.SEDOPARKING.COM."}, nil); got != "sedoparking.com" {
		t.Errorf("sedo name server: %q", got)
	}
	if got := rs.ParkingService([]string{"ns1.notsedoparking.com"}, nil); got != "" {
		t.Errorf("suffix must match on a label boundary: %q", got)
	}
	if got := rs.ParkingService(nil, []netip.Addr{netip.MustParseAddr("199.59.243.228")}); got == "" {
		t.Errorf("bodis address not recognised")
	}
	if got := rs.ParkingService([]string{"ns1.example.net"}, []netip.Addr{netip.MustParseAddr("192.0.2.1")}); got != "" {
		t.Errorf("ordinary DNS read as parked: %q", got)
	}
}

func TestEnrichmentRuleValidation(t *testing.T) {
	base := string(DefaultRulesYAML())
	for _, tc := range []struct{ name, from, to, want string }{
		{"negative points on a name rule", "brand-token:          {points: 30,", "brand-token:          {points: -30,", "between 0 and 100"},
		{"registration rule without days", `registered-recently:  {points: 20,  why: "newly registered", days: 30}`, `registered-recently:  {points: 20,  why: "newly registered"}`, "needs days"},
		{"bad parking CIDR", "addresses: [91.195.240.0/23,", "addresses: [91.195.240.0/33,", "not a CIDR"},
	} {
		src := strings.Replace(base, tc.from, tc.to, 1)
		if src == base {
			t.Fatalf("%s: replacement did not apply", tc.name)
		}
		if _, err := Parse([]byte(src), "x.yaml"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
