package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/ctgen"
	"github.com/helpwatch/helpwatch/watcher/source"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

const benchMessages = 1_000_000

// benchFile writes the synthetic stream once and reuses it across runs (about 1.5 GB).
func benchFile(b *testing.B) string {
	b.Helper()
	path := filepath.Join(os.TempDir(), "helpwatch-bench-1M.jsonl")
	if st, err := os.Stat(path); err == nil && st.Size() > 1<<30 {
		return path
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	if err := ctgen.WriteMessages(f, benchMessages); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkReplayToSQLite replays 1,000,000 certificate messages end to end (read, decode,
// dedupe, score, store in SQLite) and reports messages per second and the process's peak RSS.
func BenchmarkReplayToSQLite(b *testing.B) {
	path := benchFile(b)
	rs := defaultRules(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		db := openStore(b)
		stats := &watcher.Stats{}
		start := time.Now()
		err := Run(context.Background(), &source.Replay{Path: path, Log: quiet()}, Config{Rules: rs, Store: db, Stats: stats, Log: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		if stats.Messages.Load() != benchMessages {
			b.Fatalf("replayed %d messages", stats.Messages.Load())
		}
		b.ReportMetric(float64(stats.Messages.Load())/time.Since(start).Seconds(), "msgs/s")
		b.ReportMetric(float64(stats.Findings.Load()), "findings")
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	}
}

// BenchmarkReplayToPostgres is BenchmarkReplayToSQLite into PostgreSQL (a throwaway schema of
// the server HELPWATCH_TEST_PG names; skipped without one).
func BenchmarkReplayToPostgres(b *testing.B) {
	path := benchFile(b)
	rs := defaultRules(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db, err := store.Open(context.Background(), storetest.Schema(b), store.Options{Rules: rs})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		stats := &watcher.Stats{}
		start := time.Now()
		err = Run(context.Background(), &source.Replay{Path: path, Log: quiet()}, Config{Rules: rs, Store: db, Stats: stats, Log: quiet()})
		if err != nil {
			b.Fatal(err)
		}
		if stats.Messages.Load() != benchMessages {
			b.Fatalf("replayed %d messages", stats.Messages.Load())
		}
		b.ReportMetric(float64(stats.Messages.Load())/time.Since(start).Seconds(), "msgs/s")
		b.ReportMetric(float64(stats.Findings.Load()), "findings")
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
}
