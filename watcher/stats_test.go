package watcher

import (
	"strconv"
	"testing"
)

func TestGaps(t *testing.T) {
	var g Gaps
	for _, i := range []int64{10, 11, 15, 15, 12, 20} {
		g.Observe("a", i)
	}
	g.Observe("b", 5)
	g.Observe("", 100)
	g.Observe("c", -1)
	if m := g.Missed(); m["a"] != 3+4 || m["b"] != 0 || len(m) != 2 {
		t.Errorf("missed %v, want a: 7 (12-14 and 16-19), b: 0", m)
	}
	// A hostile server naming a new log in every frame does not grow the map without end.
	for i := range 10_000 {
		g.Observe("log"+strconv.Itoa(i), 1)
	}
	if n := len(g.Missed()); n > maxGapLogs {
		t.Errorf("%d logs tracked", n)
	}
}
