package watcher

import (
	"time"

	"github.com/helpwatch/helpwatch/rules"
)

// Case is one registrable domain (or hosting-platform subdomain) with every name of it seen in
// a certificate: the unit reports, labels and abuse mail work on. Its Score is derived from the
// stored facts (rules.ScoreCase over names, enrichment, site evidence, known numbers, label)
// and recomputed whenever one of them changes; it is never state a stage overwrites.
type Case struct {
	// ID is the store's number for the case (0 for a case not read from a store).
	ID          int64  `json:"-"`
	Registrable string `json:"registrable"`
	// Brand is the brand the case's score found (empty for brandless printer names).
	Brand string `json:"brand"`
	// Score is the case's current score (with the rules version that made it).
	Score rules.Result `json:"score"`
	// FirstScore is the strongest name's score when it was first seen, before any fact.
	FirstScore rules.Result `json:"first_score"`
	Names      []CaseName   `json:"names"`
	// CTSeen is the Certificate Transparency time of the case's first certificate (the log
	// timestamp; the certstream server's time for certstream sources); FirstSeen and LastSeen
	// are when helpwatch read its first and latest sighting.
	CTSeen    time.Time `json:"ct_seen,omitzero"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	CertCount int       `json:"cert_count"`
	// Cert is the first certificate of the case.
	Cert       Certificate       `json:"certificate"`
	Enrichment *Enrichment       `json:"enrichment,omitempty"`
	Sites      []SiteCheckResult `json:"sites,omitempty"` // the latest check of each checked name
	Label      *rules.CaseLabel  `json:"label,omitempty"`
	// Rescored is the case scored again with another rule file (`findings --rescore`); shown,
	// never stored.
	Rescored *rules.Result `json:"rescored,omitempty"`
}

// CaseName is one name of a case.
type CaseName struct {
	Name     string `json:"name"`               // canonical: lower case, A-labels, no "*." or trailing dot
	Wildcard bool   `json:"wildcard,omitempty"` // it was seen as "*.name"
	Unicode  string `json:"unicode,omitempty"`
	// Score is the name's own score when it was first seen.
	Score     rules.Result `json:"score"`
	CTSeen    time.Time    `json:"ct_seen,omitzero"`
	FirstSeen time.Time    `json:"first_seen"`
	LastSeen  time.Time    `json:"last_seen"`
	CertCount int          `json:"cert_count"`
	Cert      Certificate  `json:"certificate"`
}

// SiteCheckResult is the latest site check of one name, as a case carries it: the evidence.
type SiteCheckResult = SiteEvidence

// Verdict is the case's verdict now.
func (c *Case) Verdict() rules.Verdict { return c.Score.Verdict }

// Site is the check that counts for the case (the strongest verdict among its names, by
// rules.StrongerSite), or nil.
func (c *Case) Site() *SiteCheckResult {
	var best *SiteCheckResult
	for i := range c.Sites {
		s := &c.Sites[i]
		if best == nil || rules.StrongerSite(s.Verdict, s.Score, best.Verdict, best.Score) {
			best = s
		}
	}
	return best
}

// Reportable says whether abuse mail may go out for the case: an analyst's scam label makes
// it reportable, a benign label never, and an unsure one holds it until decided; without a
// label, its verdict must be at least min.
func (c *Case) Reportable(min rules.Verdict) (ok bool, held string) {
	if c.Label != nil {
		if decided, report, held := c.Label.Label.Decides(); decided {
			return report, held
		}
	}
	return c.Verdict().Rank() >= min.Rank(), ""
}

// Addresses are the case's addresses from its enrichment (every name's A, AAAA and CNAME).
func (c *Case) Addresses() []string {
	if c.Enrichment == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, d := range c.Enrichment.DNS {
		for _, a := range append(append(append([]string(nil), d.A...), d.AAAA...), d.CNAME...) {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out
}

// EnrichmentFacts reduces an enrichment to what the rules score: registration age, and the
// DNS of the case's names (any name that resolves makes the case resolve; the registrable
// domain's records are the same for every name).
func EnrichmentFacts(en *Enrichment) rules.Facts {
	f := rules.Facts{Now: en.At}
	if en.Registration.State == Found {
		f.Registered = en.Registration.Created
	}
	for _, d := range en.DNS {
		if d.State == Unknown {
			continue
		}
		f.DNSKnown = true
		f.Resolves = f.Resolves || len(d.A)+len(d.AAAA)+len(d.CNAME) > 0
		f.HasNS = f.HasNS || len(d.NS) > 0
		f.HasMX = f.HasMX || len(d.MX) > 0
		f.CatchAll = f.CatchAll || d.CatchAll
		if f.ParkedBy == "" {
			f.ParkedBy = d.ParkedBy
		}
	}
	return f
}
