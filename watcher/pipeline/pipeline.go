// Package pipeline wires the stages of a watch together:
//
//	source → normalize → dedupe → score → store → emit
//
// Three goroutines joined by bounded queues: the source (reading and decoding), the scorer
// (normalize, dedupe, score) and the writer (batched transactions, then emit). When the scorer
// or the writer falls behind a live source, the events that do not fit in the queue are dropped
// and counted, because blocking would make the certstream server cut the connection; a replay
// is blocked instead, so it never loses anything.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Saver is the part of the store the pipeline writes to.
type Saver interface {
	Save(ctx context.Context, batch []store.Sighting, counts store.Counts) ([]watcher.Case, error)
}

// Config holds the pipeline's collaborators and limits; zero limits take the defaults.
type Config struct {
	Rules *rules.RuleSet
	Store Saver
	Stats *watcher.Stats
	Log   *slog.Logger
	// Keep is the lowest verdict stored as a finding (default watch).
	Keep rules.Verdict
	// Emit is called from the writer goroutine for each new case once its batch is committed
	// (a name joining a known case is not new).
	Emit func(*watcher.Case)
	// QueueEvents bounds the events waiting for the scorer (default 16384).
	QueueEvents int
	// DedupeSize bounds the names remembered (default 131072, about 20 MB); DedupeTTL bounds
	// how long (default 24 h): a name seen again within both is neither re-scored nor re-counted
	// as new, only its sighting is recorded.
	DedupeSize int
	DedupeTTL  time.Duration
	// BatchSize and FlushEvery bound a write transaction: whichever comes first (2000, 1 s).
	// A crash loses at most the batch being collected.
	BatchSize  int
	FlushEvery time.Duration
	// ShutdownBudget bounds the final flush after a stop (ctx cancelled: a signal); default 3 s.
	// A source that ended by itself (a replay read to its end) has no budget: its last batch is
	// stored whatever the load, retried while the store fails, until it is or a stop comes.
	ShutdownBudget time.Duration
	// SpillDir is where the sightings a stop could not store within the budget are written, as
	// certstream messages a replay stores (default: the working directory).
	SpillDir string
	// Now is the clock sightings are stamped with (default time.Now; tests fix it).
	Now func() time.Time
}

func (c *Config) defaults() error {
	if c.Rules == nil || c.Store == nil {
		return errors.New("pipeline needs rules and a store")
	}
	if c.Stats == nil {
		c.Stats = &watcher.Stats{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Keep == "" {
		c.Keep = rules.VerdictWatch
	}
	if c.QueueEvents <= 0 {
		c.QueueEvents = 16384
	}
	if c.DedupeSize <= 0 {
		c.DedupeSize = 1 << 17
	}
	if c.DedupeTTL <= 0 {
		c.DedupeTTL = 24 * time.Hour
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 2000
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = time.Second
	}
	if c.ShutdownBudget <= 0 {
		c.ShutdownBudget = 3 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Run feeds src through the pipeline until the source ends (a replay: Run returns nil once
// everything read is stored) or ctx is cancelled (Run stops reading, stores what is queued,
// and returns nil). Errors are the source's unrecoverable ones or a store that stayed broken
// through shutdown; the error then says how many sightings were not stored.
func Run(ctx context.Context, src watcher.Source, cfg Config) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	events := make(chan *watcher.Event, cfg.QueueEvents)
	sightings := make(chan store.Sighting, cfg.BatchSize*2)
	live := src.Live()
	dropLog := time.Time{}
	stats := cfg.Stats

	emit := func(ev *watcher.Event) {
		if live {
			select {
			case events <- ev:
			default:
				stats.Dropped.Add(1)
				if now := time.Now(); now.Sub(dropLog) > 10*time.Second {
					dropLog = now
					cfg.Log.Warn("pipeline behind the live source: dropping events", "dropped_total", stats.Dropped.Load(), "queue", cap(events))
				}
			}
			return
		}
		select {
		case events <- ev:
		case <-ctx.Done():
		}
	}

	srcErr := make(chan error, 1)
	go func() {
		defer close(events)
		srcErr <- src.Run(ctx, emit, stats)
	}()
	go func() {
		defer close(sightings)
		newScorer(&cfg).run(events, sightings)
	}()
	storeErr := writer(ctx, &cfg, sightings)

	err := <-srcErr
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	if err != nil {
		err = fmt.Errorf("source %s: %w", src, err)
	}
	return errors.Join(err, storeErr)
}

// scorer owns the dedupe cache and a rules.Scorer; it runs in one goroutine.
type scorer struct {
	cfg    *Config
	score  *rules.Scorer
	seed   maphash.Seed
	seen   *simplelru.LRU[uint64, seenName]
	keep   int
	ttl    int64
	result rules.Result
}

// seenName is what the dedupe cache remembers: when, and the result if it was a finding (so a
// re-sighting can be stored without scoring again). Keys are 64-bit hashes under a per-process
// random seed: collisions are vanishingly rare and cannot be aimed at from outside.
type seenName struct {
	at      int64
	finding *rules.Result
}

func newScorer(cfg *Config) *scorer {
	lru, _ := simplelru.NewLRU[uint64, seenName](cfg.DedupeSize, nil)
	return &scorer{cfg: cfg, score: cfg.Rules.NewScorer(), seed: maphash.MakeSeed(), seen: lru,
		keep: cfg.Keep.Rank(), ttl: int64(cfg.DedupeTTL)}
}

func (s *scorer) run(events <-chan *watcher.Event, out chan<- store.Sighting) {
	stats := s.cfg.Stats
	for ev := range events {
		if ev.Position != nil {
			out <- store.Sighting{Position: ev.Position}
			continue
		}
		now := s.cfg.Now()
		for _, raw := range ev.Names {
			key := maphash.String(s.seed, dedupeKey(raw))
			if prev, ok := s.seen.Get(key); ok && now.UnixNano()-prev.at < s.ttl {
				stats.Duplicates.Add(1)
				if prev.finding != nil {
					out <- store.Sighting{Result: *prev.finding, At: now, CTSeen: ev.Seen, Cert: ev.Cert}
				}
				continue
			}
			stats.Names.Add(1)
			s.score.ScoreInto(raw, &s.result)
			entry := seenName{at: now.UnixNano()}
			if s.result.Verdict.Rank() >= s.keep {
				r := s.result
				r.Reasons = append([]rules.Reason(nil), s.result.Reasons...)
				entry.finding = &r
				out <- store.Sighting{Result: r, At: now, CTSeen: ev.Seen, Cert: ev.Cert}
			}
			s.seen.Add(key, entry)
		}
	}
}

// dedupeKey is the cheap part of normalization: case, wildcard and trailing dot. Names that
// differ only in deeper ways (IDNA forms) are scored twice and meet again in the store.
func dedupeKey(name string) string {
	name = strings.TrimSuffix(strings.TrimPrefix(name, "*."), ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// writer collects sightings into batches and commits them; it returns when sightings closes
// and the last batch is stored (or the shutdown budget is spent on a failing store).
func writer(ctx context.Context, cfg *Config, sightings <-chan store.Sighting) error {
	stats := cfg.Stats
	batch := make([]store.Sighting, 0, cfg.BatchSize)
	// While the store fails, the batch is kept and grows up to maxPending; then the writer stops
	// reading, the scorer blocks, and a live source drops (counted) instead of memory growing.
	maxPending := cfg.BatchSize * 10
	var last store.Counts
	var failingSince, lastFailLog time.Time
	tick := time.NewTicker(cfg.FlushEvery)
	defer tick.Stop()

	// A CT log source sends position markers after the entries they cover: a batch is cut
	// after its last marker, so that a position is committed in the same transaction as the
	// findings of the entries before it, not one batch later.
	positioned := false
	flush := func(final bool) error {
		now := store.Counts{Messages: stats.Messages.Load(), Names: stats.Names.Load() + stats.Duplicates.Load(), Dropped: stats.Dropped.Load()}
		delta := store.Counts{Messages: now.Messages - last.Messages, Names: now.Names - last.Names, Dropped: now.Dropped - last.Dropped}
		n := len(batch)
		if positioned && !final {
			n = 0
			for i := len(batch) - 1; i >= 0; i-- {
				if batch[i].Position != nil {
					n = i + 1
					break
				}
			}
			if n == 0 && len(batch) >= maxPending/2 {
				n = len(batch) // no marker for this long: store what there is
			}
		}
		if n == 0 && delta == (store.Counts{}) {
			return nil
		}
		// A cancelled watch still stores what it collected: within the budget after a stop, and
		// without a deadline when the source ended by itself (until a stop comes).
		saveCtx := context.Background()
		if final {
			var cancel context.CancelFunc
			saveCtx, cancel = finalContext(ctx, cfg.ShutdownBudget)
			defer cancel()
		}
		retry := 100 * time.Millisecond
		for {
			created, err := cfg.Store.Save(saveCtx, batch[:n], delta)
			if err == nil {
				stats.Findings.Add(int64(len(created)))
				markers := 0
				for i := range batch[:n] {
					if batch[i].Position != nil {
						markers++
					}
				}
				stats.Updates.Add(int64(n - markers - len(created)))
				last = now
				batch = append(batch[:0], batch[n:]...)
				if !failingSince.IsZero() {
					cfg.Log.Info("storing findings works again", "failing_for", time.Since(failingSince).Round(time.Second))
					failingSince = time.Time{}
				}
				if cfg.Emit != nil {
					for i := range created {
						cfg.Emit(&created[i])
					}
				}
				return nil
			}
			stats.StoreErrs.Add(1)
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if !final {
				if time.Since(lastFailLog) > 30*time.Second {
					lastFailLog = time.Now()
					cfg.Log.Error("storing findings failed; keeping the batch and retrying", "sightings", len(batch), "err", err)
				}
				return err
			}
			// A full disk or a damaged file does not mend by waiting: the user must act, so the
			// watch ends now and says so (what it could not store is written beside the
			// database when it can be).
			if saveCtx.Err() != nil || errors.Is(err, store.ErrDiskFull) || errors.Is(err, store.ErrCorrupt) {
				return unstoredError(batch, cfg.SpillDir, cfg.Now(), err)
			}
			if time.Since(lastFailLog) > 30*time.Second {
				lastFailLog = time.Now()
				cfg.Log.Error("storing the last findings failed; retrying until they are stored (a stop writes them to a file instead)",
					"sightings", len(batch), "err", err)
			}
			select {
			case <-time.After(retry):
			case <-saveCtx.Done():
			}
			retry = min(2*retry, 5*time.Second)
		}
	}

	stopping := ctx.Done()
	for {
		in := sightings
		// Once the watch is stopping, the input is bounded (what is queued), so it is all read
		// to let the scorer finish; the final flush then stores it or says how much it could not.
		if len(batch) >= maxPending && stopping != nil {
			in = nil
		}
		select {
		case sg, ok := <-in:
			if !ok {
				return flush(true)
			}
			batch = append(batch, sg)
			if sg.Position != nil {
				positioned = true
			}
			if len(batch) >= cfg.BatchSize && failingSince.IsZero() {
				flush(false)
			}
		case <-tick.C:
			flush(false)
		case <-stopping:
			stopping = nil
		}
	}
}

// finalContext is the context of the last flush: once ctx is done (a stop), the budget runs
// from that moment; before, there is no deadline.
func finalContext(ctx context.Context, budget time.Duration) (context.Context, context.CancelFunc) {
	final, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(budget, cancel)
		context.AfterFunc(final, func() { t.Stop() })
	})
	return final, func() { stop(); cancel() }
}
