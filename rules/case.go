package rules

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// Canonical is the one spelling of a name the store keys it by: lower case, IDNA A-labels, no
// trailing dot, and a leading "*." taken off and reported as wildcard. "X.COM", "x.com.",
// "*.x.com" and the Unicode form of an IDN all give the same key. It does not validate beyond
// that; the scorer does.
func Canonical(name string) (canon string, wildcard bool) {
	s := strings.TrimSpace(name)
	s = strings.TrimSuffix(s, ".")
	if strings.HasPrefix(s, "*.") {
		s, wildcard = s[2:], true
	}
	if lower, err := asciiLower(s); err == nil {
		return lower, wildcard
	}
	// Characters the scorer refuses: keep a lowercase form so the key is still stable.
	if a, err := idna.Punycode.ToASCII(strings.ToLower(s)); err == nil {
		return a, wildcard
	}
	return strings.ToLower(s), wildcard
}

// Label is an analyst's word on a case (and the label of a line of a labeled corpus).
type Label string

// The labels.
const (
	LabelScam   Label = "scam"
	LabelBenign Label = "benign"
	LabelUnsure Label = "unsure"
)

// ParseLabel reads a label, accepting the usual synonyms of labeled lists.
func ParseLabel(s string) (Label, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "scam", "positive", "pos", "malicious", "bad", "1":
		return LabelScam, true
	case "benign", "negative", "neg", "legit", "legitimate", "good", "0":
		return LabelBenign, true
	case "unsure", "unknown", "?":
		return LabelUnsure, true
	}
	return "", false
}

// Decides is the one place a label's meaning for reports and abuse mail is decided: a scam
// label reports the case whatever its score, a benign label never, an unsure one holds it
// until an analyst decides (held says why); no label (decided false) leaves it to the score.
func (l Label) Decides() (decided, report bool, held string) {
	switch l {
	case LabelScam:
		return true, true, ""
	case LabelBenign:
		return true, false, "labeled benign"
	case LabelUnsure:
		return true, false, "labeled unsure: held until an analyst decides"
	}
	return false, false, ""
}

// CaseLabel is the analyst's latest word on a case.
type CaseLabel struct {
	Label Label     `json:"label"` // scam, benign, unsure
	By    string    `json:"by"`
	At    time.Time `json:"at"`
	Note  string    `json:"note,omitempty"`
}

// CaseFacts are the stored facts a case's score is made of. Nothing else goes in: the stored
// score is a cache of ScoreCase over these facts and the rule set, so the order in which the
// facts arrived (enrichment, site check, label) cannot change it.
type CaseFacts struct {
	// Registrable is the case: the registrable domain (or the hosting-platform subdomain).
	Registrable string
	// Names are the case's names as the store keys them (Canonical).
	Names []string
	// Enrichment is what the lookups found; nil until the case was enriched.
	Enrichment *Facts
	// Site is the strongest site verdict among the case's names (the latest check of each);
	// nil until a site was checked.
	Site *SiteResult
	// KnownSites counts the other cases whose flagged sites show the same phone number or
	// chat account as this case's sites.
	KnownSites int
	// Label is the analyst's latest label; nil when there is none.
	Label *CaseLabel
}

// ScoreCase is the case's score: its strongest name scored with rs, revised with the
// enrichment facts, then with the site evidence, with the analyst's label as a reason of its
// own. A label never moves the number: the score stays what the rules say (so backtests on
// labels stay honest), and what a label means for reports and abuse mail is decided where
// they are made. The result's Domain is the name that scored highest, Registrable the case.
func (rs *RuleSet) ScoreCase(f *CaseFacts) Result {
	sc := rs.NewScorer()
	best := Result{Domain: f.Registrable, Registrable: f.Registrable, Verdict: VerdictIgnore, RulesVersion: rs.Version}
	names := append([]string(nil), f.Names...)
	sort.Strings(names) // ties go to the same name whatever order the names arrived in
	first := true
	for _, n := range names {
		r := sc.Score(n)
		if r.Verdict == VerdictInvalid {
			continue
		}
		if first || r.Score > best.Score || (r.Score == best.Score && len(r.Domain) < len(best.Domain)) {
			best, first = r, false
			best.Reasons = append([]Reason(nil), r.Reasons...)
		}
	}
	if f.Registrable != "" {
		best.Registrable = f.Registrable
	}
	out := best
	if f.Enrichment != nil {
		out = rs.Revise(&best, *f.Enrichment)
	}
	if f.Site != nil || f.KnownSites > 0 {
		var site SiteResult
		if f.Site != nil {
			site = *f.Site
		}
		out = rs.WithSite(out, site, f.KnownSites)
	}
	if l := f.Label; l != nil && l.Label != "" {
		detail := fmt.Sprintf("an analyst labeled it %s", l.Label)
		if l.By != "" {
			detail += " (" + l.By
			if !l.At.IsZero() {
				detail += ", " + l.At.UTC().Format(time.DateOnly)
			}
			detail += ")"
		}
		if l.Note != "" {
			detail += ": " + l.Note
		}
		out.Reasons = append(append([]Reason(nil), out.Reasons...), Reason{Rule: "label:" + string(l.Label), Detail: detail})
	}
	out.RulesVersion = rs.Version
	return out
}

// Rank is the one ranking of site verdicts, by how much they count against a case: clone,
// helpline, parked, benign, unreachable (0: unknown).
func (v SiteVerdict) Rank() int {
	switch v {
	case SiteClone:
		return 5
	case SiteHelpline:
		return 4
	case SiteParked:
		return 3
	case SiteBenign:
		return 2
	case SiteUnreachable:
		return 1
	}
	return 0
}

// Flagged says whether the verdict is abuse seen on the site: a clone or a helpline page.
func (v SiteVerdict) Flagged() bool { return v == SiteClone || v == SiteHelpline }

// StrongerSite says whether verdict a with content score as outranks b with bs: the higher
// Rank, then the higher score.
func StrongerSite(a SiteVerdict, as int, b SiteVerdict, bs int) bool {
	if a.Rank() != b.Rank() {
		return a.Rank() > b.Rank()
	}
	return as > bs
}

// StrongestSite picks the verdict that counts for a case among its names' latest checks (by
// StrongerSite). nil when there is none.
func StrongestSite(sites []SiteResult) *SiteResult {
	var best *SiteResult
	for i := range sites {
		s := &sites[i]
		if best == nil || StrongerSite(s.Verdict, s.Score, best.Verdict, best.Score) {
			best = s
		}
	}
	if best == nil {
		return nil
	}
	out := *best
	return &out
}
