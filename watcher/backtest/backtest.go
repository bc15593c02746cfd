// Package backtest measures a rule file on what a deployment has stored: the analysts' labels
// give recall and false alerts, the stored cases the alerts per day the rule file would have
// raised beside those that were raised. It is read-only: nothing is rescored in the store.
package backtest

import (
	"context"
	"sort"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Source is what a backtest reads; *store.SQL is one.
type Source interface {
	Labels(ctx context.Context, since time.Time) ([]store.Label, error)
	Cases(ctx context.Context, q store.Query) ([]watcher.Case, error)
	CaseFacts(ctx context.Context, registrable string) (*rules.CaseFacts, error)
}

// Day is one CT day's alerts and watches, as stored and under the rule file tested.
type Day struct {
	Day                       string
	StoredAlerts, StoredWatch int
	NewAlerts, NewWatch       int
}

// Result is a backtest.
type Result struct {
	// Report is recall on the cases labeled scam and false alerts on those labeled benign.
	Report      *rules.EvalReport
	Scam        []string
	Benign      []string
	Cases       int
	Days        []Day // oldest first
	StoredTotal int   // alerts stored over all days
	NewTotal    int   // alerts under the rule file tested
}

// Run backtests rs on src: every case first seen at or after since (zero: all) and every
// labeled case is scored as the store scores it, from its stored facts, with rs; the label
// itself is left out, since it is what the score is tested against.
func Run(ctx context.Context, src Source, rs *rules.RuleSet, since time.Time) (*Result, error) {
	labels, err := src.Labels(ctx, time.Time{})
	if err != nil {
		return nil, err
	}
	res := &Result{}
	for _, l := range labels {
		switch l.Label {
		case rules.LabelScam:
			res.Scam = append(res.Scam, l.Registrable)
		case rules.LabelBenign:
			res.Benign = append(res.Benign, l.Registrable)
		}
	}
	found, err := src.Cases(ctx, store.Query{Since: since})
	if err != nil {
		return nil, err
	}
	res.Cases = len(found)
	scoreCase := func(registrable string, r *rules.Result) {
		facts, err := src.CaseFacts(ctx, registrable)
		if err != nil {
			*r = rs.ScoreCase(&rules.CaseFacts{Registrable: registrable, Names: []string{registrable}})
			return
		}
		facts.Label = nil
		*r = rs.ScoreCase(facts)
	}
	days := map[string]*Day{}
	var r rules.Result
	for i := range found {
		c := &found[i]
		key := c.CTSeen.UTC().Format(time.DateOnly)
		d := days[key]
		if d == nil {
			d = &Day{Day: key}
			days[key] = d
		}
		switch c.Verdict() {
		case rules.VerdictAlert:
			d.StoredAlerts++
		case rules.VerdictWatch:
			d.StoredWatch++
		}
		scoreCase(c.Registrable, &r)
		switch r.Verdict {
		case rules.VerdictAlert:
			d.NewAlerts++
		case rules.VerdictWatch:
			d.NewWatch++
		}
	}
	for _, d := range days {
		res.Days = append(res.Days, *d)
		res.StoredTotal += d.StoredAlerts
		res.NewTotal += d.NewAlerts
	}
	sort.Slice(res.Days, func(i, j int) bool { return res.Days[i].Day < res.Days[j].Day })
	res.Report = rules.Evaluate(rs, []rules.Corpus{{Name: "labels (scam)", Positive: true, Names: res.Scam, Score: scoreCase},
		{Name: "labels (benign)", Names: res.Benign, Score: scoreCase}})
	return res, nil
}
