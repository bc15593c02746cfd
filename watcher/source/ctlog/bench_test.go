package ctlog_test

import (
	"context"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/pipeline"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog/ctlogtest"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// BenchmarkStaticLogEndToEnd follows a local static-ct-api log from its first entry to its
// head through the whole watch: fetch, verify, parse, score, store (SQLite in a temporary
// directory). The log runs in the same process and its serving is counted too.
func BenchmarkStaticLogEndToEnd(b *testing.B) {
	const n = 100_000
	l := ctlogtest.NewLog(b, ctlog.KindStatic, "Bench")
	l.Add(ctlogtest.StreamEntries(n, 0)...)
	l.Publish()
	rs, err := rules.Default()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		db, err := store.OpenSQLite(context.Background(), b.TempDir()+"/h.db", store.Options{Rules: rs})
		if err != nil {
			b.Fatal(err)
		}
		src, err := ctlog.New(ctlog.Config{List: ctlogtest.List(l), FromIndex: index(0), Positions: db, Log: quietLog(), Poll: time.Millisecond,
			Politeness: ctlog.Politeness{Parallel: 4}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		stats := &watcher.Stats{}
		b.StartTimer()
		start := time.Now()
		go func() {
			done <- pipeline.Run(ctx, src, pipeline.Config{Rules: rs, Store: db, Stats: stats, Log: quietLog()})
		}()
		for {
			ps, _ := db.LogPositions(context.Background())
			if len(ps) == 1 && ps[0].Next == n {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		cancel()
		<-done
		db.Close()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "entries/s")
		b.StartTimer()
	}
}

// BenchmarkParse is the CPU cost of turning log entries into names and facts, per 1,000
// entries.
func BenchmarkParse(b *testing.B) {
	entries := ctlogtest.StreamEntries(1000, 0)
	leaves := make([][]byte, len(entries))
	for i, e := range entries {
		leaves[i] = e.MerkleTreeLeaf()
	}
	b.ResetTimer()
	for range b.N {
		for i, leaf := range leaves {
			if _, _, err := ctlog.ParseMerkleTreeLeaf(int64(i), leaf); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/1000-entries")
}

// BenchmarkVerify is the CPU cost of checking 1,000 entries against a tree head, per kind: for
// a static-ct-api log the leaf hashes and the four full tiles' subtree roots (what is compared
// with the level-1 hash tile), for an RFC 6962 log the leaf hashes appended to the compact
// range and its root. Fetching the proofs and hash tiles is network, not CPU, and not counted.
func BenchmarkVerify(b *testing.B) {
	entries := ctlogtest.StreamEntries(1024, 0)
	leaves := make([][]byte, len(entries))
	for i, e := range entries {
		leaves[i] = e.MerkleTreeLeaf()
	}
	b.Run("static-ct-api", func(b *testing.B) {
		hashes := make([]tlog.Hash, 256)
		for range b.N {
			for tile := range 4 {
				for j := range 256 {
					hashes[j] = tlog.RecordHash(leaves[tile*256+j])
				}
				for w := 256; w > 1; w /= 2 {
					for j := range w / 2 {
						hashes[j] = tlog.NodeHash(hashes[2*j], hashes[2*j+1])
					}
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)*1000/1024, "µs/1000-entries")
	})
	b.Run("rfc6962", func(b *testing.B) {
		f := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
		for range b.N {
			r := f.NewEmptyRange(0)
			for _, leaf := range leaves {
				if err := r.Append(rfc6962.DefaultHasher.HashLeaf(leaf), nil); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := r.GetRootHash(nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)*1000/1024, "µs/1000-entries")
	})
}
