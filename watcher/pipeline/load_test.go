package pipeline

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/ctgen"
	"github.com/helpwatch/helpwatch/watcher/source"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

// loadMachine keeps every core busy with spinning processes until the test or benchmark ends:
// the replay then competes for the CPU as it does on a loaded CI machine.
func loadMachine(tb testing.TB) {
	tb.Helper()
	for range runtime.NumCPU() {
		spin := exec.Command("sh", "-c", "while :; do :; done")
		if err := spin.Start(); err != nil {
			tb.Skipf("cannot start a load process: %v", err)
		}
		tb.Cleanup(func() { spin.Process.Kill(); spin.Wait() })
	}
}

// replayFile writes n synthetic certstream messages and returns the file and the canonical
// names in it that rs flags (watch or above).
func replayFile(tb testing.TB, n int, rs *rules.RuleSet) (string, map[string]bool) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "replay.jsonl")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := ctgen.WriteMessages(f, n); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	flagged := map[string]bool{}
	sc := rs.NewScorer()
	collect := func(ev *watcher.Event) {
		for _, name := range ev.Names {
			if r := sc.Score(name); r.Verdict.Rank() >= rules.VerdictWatch.Rank() {
				canon, _ := rules.Canonical(name)
				flagged[canon] = true
			}
		}
	}
	if err := (&source.Replay{Path: path, Log: quiet()}).Run(context.Background(), collect, &watcher.Stats{}); err != nil {
		tb.Fatal(err)
	}
	return path, flagged
}

// A 200,000-message replay into PostgreSQL with every core busy stores every flagged name:
// the end of a replay waits for its last batch however slow the store is.
func TestReplayIntoPostgresUnderLoadStoresEverything(t *testing.T) {
	if _, err := storetest.URL(); err != nil {
		if storetest.Required() {
			t.Fatal(storetest.SkipMessage(err))
		}
		t.Skip(storetest.SkipMessage(err))
	}
	rs := defaultRules(t)
	path, flagged := replayFile(t, 200_000, rs)
	if len(flagged) < 1000 {
		t.Fatalf("the synthetic stream has only %d flagged names", len(flagged))
	}
	db, err := store.Open(context.Background(), storetest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	loadMachine(t)
	stats := &watcher.Stats{}
	if err := Run(context.Background(), &source.Replay{Path: path, Log: quiet()}, Config{Rules: rs, Store: db, Stats: stats,
		Log: quiet(), ShutdownBudget: 1, SpillDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	stored := names(t, db)
	missing := 0
	for n := range flagged {
		if _, ok := stored[n]; !ok {
			if missing++; missing <= 5 {
				t.Errorf("flagged name %s not stored", n)
			}
		}
	}
	if missing > 0 || len(stored) != len(flagged) {
		t.Fatalf("%d of %d flagged names missing; %d stored", missing, len(flagged), len(stored))
	}
}

// BenchmarkReplayIntoPostgresUnderLoad is the test above as a measurement: messages per second
// into PostgreSQL while spinning processes keep every core busy.
func BenchmarkReplayIntoPostgresUnderLoad(b *testing.B) {
	if _, err := storetest.URL(); err != nil {
		b.Skip(storetest.SkipMessage(err))
	}
	rs := defaultRules(b)
	path, flagged := replayFile(b, 200_000, rs)
	loadMachine(b)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		db, err := store.Open(context.Background(), storetest.Schema(b))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		stats := &watcher.Stats{}
		if err := Run(context.Background(), &source.Replay{Path: path, Log: quiet()}, Config{Rules: rs, Store: db, Stats: stats,
			Log: quiet(), ShutdownBudget: 1}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if got := len(names(b, db)); got != len(flagged) {
			b.Fatalf("stored %d of %d flagged names", got, len(flagged))
		}
		b.ReportMetric(float64(stats.Messages.Load())/b.Elapsed().Seconds(), "msgs/s")
		db.Close()
		b.StartTimer()
	}
}
