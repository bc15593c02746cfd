package rules

import "sort"

// Change is a name whose verdict or brand differs between two rule sets.
type Change struct {
	Old, New Result
}

// CorpusDiff compares two rule sets on one corpus.
type CorpusDiff struct {
	Old, New CorpusReport
	Changes  []Change // corpus order
}

// DiffReport is the outcome of Diff.
type DiffReport struct {
	OldVersion, NewVersion string
	Corpora                []CorpusDiff
}

// Diff scores every corpus with both rule sets and keeps the names whose verdict or brand
// changes, with both results (and so both sets of reasons).
func Diff(oldRS, newRS *RuleSet, corpora []Corpus, progress ...Progress) *DiffReport {
	rep := &DiffReport{OldVersion: oldRS.Version, NewVersion: newRS.Version}
	oldSc, newSc := oldRS.NewScorer(), newRS.NewScorer()
	var o, n Result
	scored := 0
	for _, c := range corpora {
		d := CorpusDiff{Old: CorpusReport{Name: c.Name, Positive: c.Positive, Unlabeled: c.Unlabeled},
			New: CorpusReport{Name: c.Name, Positive: c.Positive, Unlabeled: c.Unlabeled}}
		for _, name := range c.Names {
			scored++
			tick(progress, scored)
			oldSc.ScoreInto(name, &o)
			newSc.ScoreInto(name, &n)
			count(&d.Old, &o)
			count(&d.New, &n)
			if o.Verdict != n.Verdict || o.Brand != n.Brand {
				d.Changes = append(d.Changes, Change{Old: clone(o), New: clone(n)})
			}
		}
		rep.Corpora = append(rep.Corpora, d)
	}
	return rep
}

func count(cr *CorpusReport, r *Result) {
	cr.Total++
	switch r.Verdict {
	case VerdictInvalid:
		cr.Invalid++
	case VerdictAlert:
		cr.Alerts++
	case VerdictWatch:
		cr.Watches++
	}
}

// SweepPoint is what one threshold would give: the share of positives and of negatives whose
// score reaches it.
type SweepPoint struct {
	Threshold    int
	Recall       float64 // positives at or above
	NegativeRate float64 // negatives at or above
	Positives    int
	Negatives    int
}

// Sweep scores positives and negatives once and reports, for every threshold from 0 to 100,
// how many of each would reach it.
func Sweep(rs *RuleSet, positives, negatives []string, progress ...Progress) []SweepPoint {
	scored := 0
	hist := func(names []string) (counts [102]int, total int) {
		sc := rs.NewScorer()
		var r Result
		for _, n := range names {
			scored++
			tick(progress, scored)
			sc.ScoreInto(n, &r)
			if r.Verdict == VerdictInvalid {
				continue
			}
			counts[min(max(r.Score, 0), 100)]++
			total++
		}
		return
	}
	pos, posTotal := hist(positives)
	neg, negTotal := hist(negatives)
	points := make([]SweepPoint, 101)
	p, n := 0, 0
	for t := 100; t >= 0; t-- { // cumulative from the top: names with score >= t
		p += pos[t]
		n += neg[t]
		points[t] = SweepPoint{Threshold: t, Positives: p, Negatives: n, Recall: ratio(p, posTotal), NegativeRate: ratio(n, negTotal)}
	}
	return points
}

// SortChanges orders changes by the new score, highest first (the ones to look at first).
func SortChanges(cs []Change) {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].New.Score > cs[j].New.Score })
}
