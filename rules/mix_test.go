package rules

import "github.com/helpwatch/helpwatch/watcher/ctgen"

// realisticMix is the synthetic stream the benchmarks and the throughput figures use.
func realisticMix(n int) []string { return ctgen.Names(n) }
