package rules

import "sync"

// Input is one line of a name list: a name, or why the line is not one.
type Input struct {
	Name string
	Err  error
}

// ScoreInOrder scores batches of inputs on workers goroutines (each with its own Scorer) and
// calls emit for every result in input order, from the calling goroutine. An input with Err
// is an invalid result saying so. It returns when batches is closed and everything is
// emitted, or with emit's first error (the rest of batches is drained, not scored).
func (rs *RuleSet) ScoreInOrder(workers int, batches <-chan []Input, emit func(*Result) error) error {
	workers = max(workers, 1)
	type job struct {
		seq    int
		inputs []Input
	}
	type done struct {
		seq     int
		results []Result
	}
	jobs := make(chan job, workers)
	results := make(chan done, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := rs.NewScorer()
			for j := range jobs {
				out := make([]Result, len(j.inputs))
				for i, in := range j.inputs {
					if in.Err != nil {
						out[i] = Result{Domain: in.Name, Verdict: VerdictInvalid, Error: in.Err.Error(), RulesVersion: rs.Version}
						continue
					}
					sc.ScoreInto(in.Name, &out[i])
				}
				results <- done{j.seq, out}
			}
		}()
	}
	go func() {
		seq := 0
		for b := range batches {
			jobs <- job{seq, b}
			seq++
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()
	pending := map[int][]Result{}
	next := 0
	var err error
	for d := range results {
		pending[d.seq] = d.results
		for rs, ok := pending[next]; ok; rs, ok = pending[next] {
			delete(pending, next)
			next++
			for i := range rs {
				if err == nil {
					err = emit(&rs[i])
				}
			}
		}
	}
	return err
}
