package enrich

import (
	"context"
	"sync"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

// Record is one name looked up on its own: its score, what the lookups found and the score
// revised with it.
type Record struct {
	Name       string              `json:"name"`
	Score      rules.Result        `json:"score"`
	Enrichment *watcher.Enrichment `json:"enrichment"`
	Revised    rules.Result        `json:"revised"`
}

// Names looks names up, workers at a time (each server still paced by its own limit), and
// calls deliver in the order the names were given, each as soon as it and every name before it
// are done; finished counts the names done so far, in any order (for progress). A name that
// cannot be scored is delivered with its invalid score and no enrichment. A stop (ctx) ends it
// with the names not reached undelivered; an error from deliver ends it at once.
func Names(parent context.Context, rs *rules.RuleSet, e *Enricher, names []string, workers int, deliver func(r *Record, finished int) error) error {
	// An error from deliver stops the lookups not started yet, as a stop does.
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	sc := rs.NewScorer()
	records := make([]*Record, len(names))
	for i, name := range names {
		records[i] = &Record{Name: name, Score: sc.Score(name)}
		if d := records[i].Score.Domain; d != "" {
			records[i].Name = d
		}
	}
	done := make(chan int, len(names))
	work := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < max(1, min(workers, len(names))); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				r := records[i]
				if r.Score.Verdict != rules.VerdictInvalid {
					name, _ := rules.Canonical(r.Score.Domain)
					en := e.Enrich(ctx, r.Score.Registrable, []string{name})
					if ctx.Err() != nil {
						continue // not done: a stop leaves it undelivered
					}
					facts := watcher.EnrichmentFacts(en)
					r.Enrichment = en
					r.Revised = rs.ScoreCase(&rules.CaseFacts{Registrable: r.Score.Registrable, Names: []string{name}, Enrichment: &facts})
				}
				done <- i
			}
		}()
	}
	go func() {
		defer close(work)
		for i := range names {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(done) }()

	finished, next := 0, 0
	ready := make([]bool, len(names))
	for i := range done {
		finished++
		ready[i] = true
		for next < len(names) && ready[next] {
			if err := deliver(records[next], finished); err != nil {
				cancel()
				for range done { // the workers end their current name and stop
				}
				return err
			}
			next++
		}
	}
	return parent.Err()
}
