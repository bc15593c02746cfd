package backtest

import (
	"context"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/testkit"
)

type fakeSource struct {
	labels []store.Label
	cases  []watcher.Case
	facts  map[string]*rules.CaseFacts
}

func (f *fakeSource) Labels(context.Context, time.Time) ([]store.Label, error) { return f.labels, nil }
func (f *fakeSource) Cases(_ context.Context, q store.Query) ([]watcher.Case, error) {
	var out []watcher.Case
	for _, c := range f.cases {
		if !c.CTSeen.Before(q.Since) {
			out = append(out, c)
		}
	}
	return out, nil
}
func (f *fakeSource) CaseFacts(_ context.Context, r string) (*rules.CaseFacts, error) {
	c := *f.facts[r]
	return &c, nil
}

// The backtest scores every case from its facts with the rule file under test, counts per CT
// day what was stored and what the file would raise, and measures it on the labels without
// letting the label itself count.
func TestRunCountsDaysAndLabels(t *testing.T) {
	rs := testkit.DefaultRules(t)
	day1 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	scam, plain := "hp-printer-support-number.com", "hp-printer.com"
	src := &fakeSource{
		labels: []store.Label{{Registrable: scam, Label: rules.LabelScam}, {Registrable: plain, Label: rules.LabelBenign}},
		cases: []watcher.Case{
			{Registrable: scam, CTSeen: day1, Score: rules.Result{Verdict: rules.VerdictWatch}},
			{Registrable: plain, CTSeen: day1.Add(24 * time.Hour), Score: rules.Result{Verdict: rules.VerdictAlert}},
		},
		facts: map[string]*rules.CaseFacts{
			scam:  {Registrable: scam, Names: []string{scam}, Label: &rules.CaseLabel{Label: rules.LabelScam}},
			plain: {Registrable: plain, Names: []string{plain}, Label: &rules.CaseLabel{Label: rules.LabelBenign}},
		},
	}
	want := map[string]rules.Verdict{scam: rs.ScoreCase(&rules.CaseFacts{Registrable: scam, Names: []string{scam}}).Verdict,
		plain: rs.ScoreCase(&rules.CaseFacts{Registrable: plain, Names: []string{plain}}).Verdict}
	if want[scam] != rules.VerdictAlert {
		t.Fatalf("%s scores %s under the default rules: the test shows nothing", scam, want[scam])
	}
	res, err := Run(context.Background(), src, rs, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Days) != 2 || res.Days[0].Day != "2026-11-01" || res.Days[0].StoredWatch != 1 || res.Days[0].NewAlerts != 1 ||
		res.Days[1].StoredAlerts != 1 || res.StoredTotal != 1 {
		t.Errorf("days %+v", res.Days)
	}
	if res.Cases != 2 || len(res.Scam) != 1 || len(res.Benign) != 1 || res.Report == nil {
		t.Errorf("result %+v", res)
	}
	// --since keeps the later day only.
	res, _ = Run(context.Background(), src, rs, day1.Add(time.Hour))
	if res.Cases != 1 || len(res.Days) != 1 || res.Days[0].Day != "2026-11-02" {
		t.Errorf("since: %+v", res.Days)
	}
}
