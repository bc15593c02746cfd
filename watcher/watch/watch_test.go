package watch

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
	"github.com/helpwatch/helpwatch/watcher/source"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

// A watch of a replay stores every case it reports, emits each once, and says what is left
// queued for the workers it was not given.
func TestRunReplayStoresAndReports(t *testing.T) {
	db, err := store.Open(context.Background(), storetest.Where(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	emitted := map[string]int{}
	res, err := Run(context.Background(), Config{
		Source: &source.Replay{Path: filepath.Join("..", "..", "testdata", "certstream_demo.jsonl"), Log: quiet},
		Store:  db, Log: quiet, Emit: func(c *watcher.Case) { emitted[c.Registrable]++ }, SpillDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	cases, err := db.Cases(context.Background(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 || int64(len(cases)) != res.Stats.Findings.Load() || len(emitted) != len(cases) {
		t.Fatalf("%d cases stored, %d findings counted, %d emitted", len(cases), res.Stats.Findings.Load(), len(emitted))
	}
	for name, n := range emitted {
		if n != 1 {
			t.Errorf("%s emitted %d times", name, n)
		}
	}
	// Without workers every new case's jobs stay queued: one per kind queued on a new case.
	perCase := 0
	for _, k := range jobs.All {
		if k.OnNewName {
			perCase++
		}
	}
	if res.Pending != perCase*len(cases) {
		t.Errorf("%d jobs pending, want %d", res.Pending, perCase*len(cases))
	}
}
