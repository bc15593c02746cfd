package rules

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Facts are what enrichment learned about a name, reduced to what the rules score. The rules
// package never looks anything up: the caller brings the facts.
type Facts struct {
	// Now is the time ages are measured against (the enrichment time).
	Now time.Time
	// Registered is the domain's registration date; zero when unknown.
	Registered time.Time
	// DNSKnown says the DNS answers below are real (the resolvers answered); when false, the
	// DNS rules stay silent rather than reading a timeout as "no DNS".
	DNSKnown bool
	Resolves bool // any A, AAAA or CNAME for the name
	HasNS    bool // the registrable domain is delegated
	HasMX    bool
	CatchAll bool   // a random label under the domain resolves too
	ParkedBy string // the parking service, when parked
}

// Revise returns r re-scored with facts: r's reasons, then one reason per enrichment rule that
// applies, and the score and verdict recomputed. r itself is not changed, so the first score
// can be kept next to the revised one. A brand-owned or unscored name is returned as it was.
func (rs *RuleSet) Revise(r *Result, f Facts) Result {
	out := *r
	out.Reasons = append([]Reason(nil), r.Reasons...)
	out.RulesVersion = rs.Version
	if r.Verdict == VerdictInvalid || len(r.Reasons) == 0 || r.Reasons[0].Rule == RuleBrandOwned {
		return out
	}
	add := func(kind, detail string) {
		spec := rs.spec(kind)
		if spec.Points == 0 && spec.Why == "" {
			return // not in this rule file
		}
		out.Reasons = append(out.Reasons, Reason{Rule: kind, Points: spec.Points, Detail: spec.Why + ": " + detail})
	}
	if !f.Registered.IsZero() && !f.Now.IsZero() {
		age := f.Now.Sub(f.Registered)
		days := int(age.Hours() / 24)
		recent, old := rs.spec(RuleRegisteredRecently), rs.spec(RuleRegisteredLongAgo)
		switch {
		case recent.Days > 0 && age >= -24*time.Hour && days <= recent.Days:
			add(RuleRegisteredRecently, fmt.Sprintf("registered %s (%s before it was checked)", f.Registered.UTC().Format(time.DateOnly), ageWords(days)))
		case old.Days > 0 && days >= old.Days:
			add(RuleRegisteredLongAgo, fmt.Sprintf("registered %s (%s ago)", f.Registered.UTC().Format(time.DateOnly), ageWords(days)))
		}
	}
	if f.DNSKnown {
		switch {
		case !f.Resolves && !f.HasNS && !f.HasMX:
			add(RuleNoDNS, "no address, name server or mail record")
		case f.ParkedBy != "":
			add(RuleParked, "parked with "+f.ParkedBy)
		}
		if f.CatchAll && f.ParkedBy == "" {
			add(RuleCatchAll, "a random name under the domain resolves too")
		}
		if f.HasMX {
			add(RuleMailExchanger, "the domain accepts mail")
		}
	}
	rs.settle(&out)
	return out
}

func ageWords(days int) string {
	switch {
	case days <= 0:
		return "the same day"
	case days == 1:
		return "1 day"
	case days < 60:
		return fmt.Sprintf("%d days", days)
	case days < 730:
		return fmt.Sprintf("%d months", days/30)
	}
	return fmt.Sprintf("%d years", days/365)
}

// ParkingService names the parking service behind a set of name servers and addresses, or "".
func (rs *RuleSet) ParkingService(nameServers []string, addrs []netip.Addr) string {
	for _, ns := range nameServers {
		ns = strings.TrimSuffix(strings.ToLower(ns), ".")
		for _, p := range rs.parkingNS {
			if ns == p || strings.HasSuffix(ns, "."+p) {
				return p
			}
		}
	}
	for _, a := range addrs {
		for _, p := range rs.parkingAddrs {
			if p.Contains(a.Unmap()) {
				return p.String()
			}
		}
	}
	return ""
}

// settle recomputes a revised result's score from its reasons (clamped to 0-100) and its
// verdict from the thresholds; below watch is ignore.
func (rs *RuleSet) settle(r *Result) {
	r.Score = 0
	for _, re := range r.Reasons {
		r.Score += re.Points
	}
	r.Score = min(max(r.Score, 0), 100)
	switch {
	case r.Score >= rs.Alert:
		r.Verdict = VerdictAlert
	case r.Score >= rs.Watch:
		r.Verdict = VerdictWatch
	default:
		r.Verdict = VerdictIgnore
	}
}
