package rules

import (
	"strings"
	"testing"
)

func TestDiffAndSweep(t *testing.T) {
	old := defaultRuleSet(t)
	strictSrc := strings.Replace(string(DefaultRulesYAML()), "alert: 50 ", "alert: 80 ", 1)
	strict, err := Parse([]byte(strictSrc), "strict.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pos := []string{"hp-printer-setup-help.com", "epsonprinter.com", "bad..name"}
	neg := []string{"example.com", "printer-museum.org"}
	rep := Diff(old, strict, []Corpus{{Name: "p", Positive: true, Names: pos}, {Name: "n", Names: neg}})
	p := rep.Corpora[0]
	if len(p.Changes) != 1 || p.Changes[0].Old.Domain != "epsonprinter.com" || p.Changes[0].Old.Verdict != VerdictAlert ||
		p.Changes[0].New.Verdict != VerdictWatch || p.Old.Alerts != 2 || p.New.Alerts != 1 || p.Old.Invalid != 1 {
		t.Errorf("diff on positives: %+v", p)
	}
	if len(rep.Corpora[1].Changes) != 0 {
		t.Errorf("negatives changed: %+v", rep.Corpora[1].Changes)
	}

	points := Sweep(old, pos, neg)
	if len(points) != 101 || points[0].Recall != 1 || points[0].NegativeRate != 1 {
		t.Fatalf("threshold 0 must take everything: %+v", points[0])
	}
	// Cumulative: never rising with the threshold; the invalid name counts nowhere.
	for i := 1; i <= 100; i++ {
		if points[i].Positives > points[i-1].Positives || points[i].Negatives > points[i-1].Negatives {
			t.Fatalf("not cumulative at %d", i)
		}
	}
	if points[50].Positives != 2 || points[51].Positives != 1 || points[21].Negatives != 0 || points[20].Negatives != 1 {
		t.Errorf("sweep counts: at 50 %d, 51 %d positives; at 20 %d, 21 %d negatives",
			points[50].Positives, points[51].Positives, points[20].Negatives, points[21].Negatives)
	}
	calls := 0
	Sweep(old, make([]string, progressEvery*2), nil, func(int) { calls++ })
	if calls != 2 {
		t.Errorf("progress called %d times for %d names", calls, progressEvery*2)
	}
}
