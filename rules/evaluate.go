package rules

import (
	"fmt"
	"sort"
)

// Corpus is a labeled list of names: every name is a scam (Positive) or every name is benign.
type Corpus struct {
	Name     string
	Positive bool
	// Unlabeled: a plain list of names, neither scams nor legitimate (rules diff only).
	Unlabeled bool
	Names     []string
	// Score, when set, scores a name of this corpus instead of the name alone: a backtest on
	// stored cases scores each with its stored facts (ScoreCase).
	Score func(name string, r *Result)
}

// CorpusReport measures a rule set on one corpus.
type CorpusReport struct {
	Name      string
	Positive  bool
	Unlabeled bool
	Total     int // names scored, invalid ones included
	Invalid   int
	Alerts    int
	Watches   int
	// Wrong holds the results the rule set got wrong: positives it did not flag, negatives it
	// flagged (alert or watch), in corpus order.
	Wrong []Result
	// WatchOnly holds the positives flagged only watch, not alert: the misses of an alert gate.
	WatchOnly []Result
	// Invalids holds the names that could not be scored.
	Invalids []Result
}

// Flagged is alerts plus watches.
func (c *CorpusReport) Flagged() int { return c.Alerts + c.Watches }

// FlagRate is the share of names flagged (alert or watch): recall on positives.
func (c *CorpusReport) FlagRate() float64 { return ratio(c.Flagged(), c.Total) }

// AlertRate is the share of names at alert.
func (c *CorpusReport) AlertRate() float64 { return ratio(c.Alerts, c.Total) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// EvalReport is the outcome of Evaluate.
type EvalReport struct {
	RulesVersion string
	Corpora      []CorpusReport
	// RuleFired counts, per rule, the names it gave points to (or, for brand-owned, matched),
	// over all corpora.
	RuleFired map[string]int
}

// Progress is told how many names have been scored so far, every few thousand names; large
// corpora take seconds, and a terminal shows it.
type Progress func(scored int)

// progressEvery is how many names pass between calls of a Progress.
const progressEvery = 1 << 14

func tick(p []Progress, n int) {
	if n%progressEvery == 0 {
		for _, f := range p {
			f(n)
		}
	}
}

// Evaluate scores every corpus with rs.
func Evaluate(rs *RuleSet, corpora []Corpus, progress ...Progress) *EvalReport {
	rep := &EvalReport{RulesVersion: rs.Version, RuleFired: map[string]int{}}
	sc := rs.NewScorer()
	var r Result
	scored := 0
	for _, c := range corpora {
		cr := CorpusReport{Name: c.Name, Positive: c.Positive, Unlabeled: c.Unlabeled}
		for _, name := range c.Names {
			scored++
			tick(progress, scored)
			if c.Score != nil {
				c.Score(name, &r)
			} else {
				sc.ScoreInto(name, &r)
			}
			cr.Total++
			for _, re := range r.Reasons {
				if re.Points != 0 || re.Rule == RuleBrandOwned {
					rep.RuleFired[re.Rule]++
				}
			}
			switch r.Verdict {
			case VerdictInvalid:
				cr.Invalid++
				cr.Invalids = append(cr.Invalids, clone(r))
			case VerdictAlert:
				cr.Alerts++
			case VerdictWatch:
				cr.Watches++
			}
			flagged := r.Verdict == VerdictAlert || r.Verdict == VerdictWatch
			if flagged != c.Positive && r.Verdict != VerdictInvalid {
				cr.Wrong = append(cr.Wrong, clone(r))
			}
			if c.Positive && r.Verdict == VerdictWatch {
				cr.WatchOnly = append(cr.WatchOnly, clone(r))
			}
		}
		rep.Corpora = append(rep.Corpora, cr)
	}
	return rep
}

func clone(r Result) Result {
	r.Reasons = append([]Reason(nil), r.Reasons...)
	return r
}

// Gates are the pass marks of `rules test`; a negative value means "not checked".
type Gates struct {
	MinRecall      float64 // positives flagged (alert or watch)
	MinAlertRecall float64 // positives at alert
	MaxAlertRate   float64 // negatives at alert
	MaxFlagRate    float64 // negatives flagged
}

// NoGates checks nothing.
var NoGates = Gates{-1, -1, -1, -1}

// Check returns one message per failed gate.
func (rep *EvalReport) Check(g Gates) []string {
	var fails []string
	for i := range rep.Corpora {
		c := &rep.Corpora[i]
		if c.Positive {
			if g.MinRecall >= 0 && c.FlagRate() < g.MinRecall {
				fails = append(fails, fmt.Sprintf("%s: flagged %.2f%% of positives, gate is >= %.2f%%", c.Name, 100*c.FlagRate(), 100*g.MinRecall))
			}
			if g.MinAlertRecall >= 0 && c.AlertRate() < g.MinAlertRecall {
				fails = append(fails, fmt.Sprintf("%s: alerted on %.2f%% of positives, gate is >= %.2f%%", c.Name, 100*c.AlertRate(), 100*g.MinAlertRecall))
			}
			continue
		}
		if g.MaxAlertRate >= 0 && c.AlertRate() > g.MaxAlertRate {
			fails = append(fails, fmt.Sprintf("%s: alerted on %.3f%% of negatives (%d), gate is <= %.3f%%", c.Name, 100*c.AlertRate(), c.Alerts, 100*g.MaxAlertRate))
		}
		if g.MaxFlagRate >= 0 && c.FlagRate() > g.MaxFlagRate {
			fails = append(fails, fmt.Sprintf("%s: flagged %.3f%% of negatives (%d), gate is <= %.3f%%", c.Name, 100*c.FlagRate(), c.Flagged(), 100*g.MaxFlagRate))
		}
	}
	return fails
}

// RulesByCount lists RuleFired in descending order.
func (rep *EvalReport) RulesByCount() []string {
	keys := make([]string, 0, len(rep.RuleFired))
	for k := range rep.RuleFired {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if rep.RuleFired[keys[i]] != rep.RuleFired[keys[j]] {
			return rep.RuleFired[keys[i]] > rep.RuleFired[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
