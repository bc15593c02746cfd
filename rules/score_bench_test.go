package rules

import "testing"

// benchScore scores names round-robin with one reused Scorer and Result, as a watcher worker
// does, and reports names/s.
func benchScore(b *testing.B, names []string) {
	rs, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	sc := rs.NewScorer()
	var r Result
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sc.ScoreInto(names[i%len(names)], &r)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "names/s")
}

// BenchmarkScore measures the per-name cost over a realistic mix.
// Target: >= 1,000,000 names/s on one core, <= 2 allocs/name.
func BenchmarkScore(b *testing.B) { benchScore(b, realisticMix(10000)) }

// BenchmarkScoreInnocent is the floor: the share of the stream that matches nothing.
func BenchmarkScoreInnocent(b *testing.B) {
	benchScore(b, []string{"www.example.com", "mail.green-garden.de", "3f9a1c2b.cloudapp.net", "shop.bestcoffee.co.uk"})
}

// BenchmarkScoreLookalike is the cost of a name that fires rules (reasons are formatted).
func BenchmarkScoreLookalike(b *testing.B) {
	benchScore(b, []string{"hpprintersupportnumbers.com", "123-hp-setup.net", "lexmrak.com", "cann0n-support.online"})
}

func BenchmarkLoadDefault(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := Parse(defaultRulesYAML, "default"); err != nil {
			b.Fatal(err)
		}
	}
}
