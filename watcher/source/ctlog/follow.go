package ctlog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/source"
)

// follower reads one log: it fetches and verifies tree heads, and hands verified chunks of
// entries, each followed by the position it reaches, to the source. Its position is its own;
// the store only sees it through the deliveries.
type follower struct {
	log    Log
	why    string
	client logClient
	src    *Source

	pos     watcher.LogPosition // verified head and next index; owned by run
	resumed bool                // pos came from the store

	httpErrors     atomic.Int64
	verifyFailures atomic.Int64
	entries        atomic.Int64
	malformed      atomic.Int64
	staleHeads     atomic.Int64 // older heads than the verified one, proved to be its prefixes

	// Unreadable entries are said at most once a minute (a hostile log may have them in
	// every chunk): when it was last said, and how many came since. Owned by run.
	malformedSaid   time.Time
	malformedUnsaid int64

	mu        sync.Mutex
	treeSize  int64
	treeTime  time.Time
	next      int64
	nextTime  time.Time
	lastError string
	retryAt   time.Time // when the log asked (Retry-After) to be asked again
	final     bool
	standby   bool // another process holds the log's lease
	rateAt    time.Time
	rateN     int64
	rate      float64

	cancel context.CancelFunc
	done   chan struct{}
}

// delivery is a verified chunk of one log and the position after it.
type delivery struct {
	f         *follower
	entries   []*Entry
	malformed int
	pos       watcher.LogPosition
}

func (f *follower) status(now time.Time) watcher.LogStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.entries.Load()
	if f.rateAt.IsZero() {
		f.rateAt, f.rateN = now, n
	} else if d := now.Sub(f.rateAt); d >= 5*time.Second {
		f.rate = float64(n-f.rateN) / d.Seconds()
		f.rateAt, f.rateN = now, n
	}
	return watcher.LogStatus{
		Name: f.log.Title(), URL: f.log.URL, Kind: f.log.Kind, State: f.log.State, Followed: true, Why: f.why,
		TreeSize: f.treeSize, TreeTime: f.treeTime, Next: f.next, NextTime: f.nextTime,
		Entries: n, Rate: f.rate, VerifyFailures: f.verifyFailures.Load(), HTTPErrors: f.httpErrors.Load(),
		LastError: f.lastError, Final: f.final, Standby: f.standby,
		Malformed: f.malformed.Load(), RetryAt: f.retryAt, StaleHeads: f.staleHeads.Load(),
	}
}

func (f *follower) setError(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retryAt = time.Time{}
	if err == nil {
		f.lastError = ""
		return
	}
	f.lastError = watcher.Clean(err.Error(), 300)
}

func (f *follower) setRetryAt(at time.Time) {
	f.mu.Lock()
	f.retryAt = at
	f.mu.Unlock()
}

func (f *follower) headOf() head {
	var root [32]byte
	copy(root[:], f.pos.RootHash)
	return head{Size: f.pos.TreeSize, Root: root, Time: f.pos.TreeTime}
}

// run follows the log until ctx ends or a read-only log is read to its final head. With a
// lease (a shared PostgreSQL store), the log is followed only while this process holds it: a
// process that cannot take it stands by and tries again every LeaseRetry, and takes over, at
// the position the other one stored, when that one has gone.
func (f *follower) run(ctx context.Context) {
	defer close(f.done)
	cfg := &f.src.cfg
	if cfg.Lease == nil {
		f.follow(ctx)
		return
	}
	announced := false
	for ctx.Err() == nil {
		ok, lost, err := cfg.Lease.TryLog(ctx, f.log.ID)
		if err != nil {
			f.setError(err)
			cfg.Log.Warn("cannot take the lease of a CT log; retrying", "log", f.log.Title(), "err", err)
		}
		if !ok {
			f.setStandby(true)
			if !announced && err == nil {
				announced = true
				cfg.Log.Info("another watch process follows this CT log; standing by to take it over", "log", f.log.Title())
			}
			if source.Sleep(ctx, cfg.LeaseRetry) != nil {
				return
			}
			continue
		}
		f.setStandby(false)
		announced = false
		if err := f.reload(ctx); err != nil {
			f.setError(err)
			if source.Sleep(ctx, cfg.LeaseRetry) != nil {
				return
			}
			continue
		}
		fctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-lost:
				cancel()
			case <-fctx.Done():
			}
		}()
		finished := f.follow(fctx)
		cancel()
		if finished || ctx.Err() != nil {
			return
		}
		cfg.Log.Warn("lost the lease of a CT log (the database connection broke); taking it again", "log", f.log.Title())
	}
}

// reload takes the position the store holds for the log now: the lease may have come from a
// process that read on after this one started.
func (f *follower) reload(ctx context.Context) error {
	if f.src.cfg.Positions == nil {
		return nil
	}
	stored, err := f.src.cfg.Positions.LogPositions(ctx)
	if err != nil {
		return fmt.Errorf("reading the stored CT log positions: %w", err)
	}
	for _, p := range stored {
		if p.LogID == f.log.ID {
			if !f.resumed || p.Next > f.pos.Next {
				f.resume(p)
				f.src.cfg.Log.Info("resuming a CT log", "log", f.log.Title(), "next_index", p.Next, "verified_tree_size", p.TreeSize)
			}
			return nil
		}
	}
	return nil
}

func (f *follower) setStandby(v bool) {
	f.mu.Lock()
	f.standby = v
	f.mu.Unlock()
}

// follow reads the log until ctx ends; finished says a read-only log was read to its final
// head. Errors never end it: a log that is down, slow or refusing is retried with backoff, and
// one that sends what does not verify is refused, said, counted and asked again later.
func (f *follower) follow(ctx context.Context) (finished bool) {
	cfg := &f.src.cfg
	failures := 0
	pause := source.Backoff{Min: 5 * time.Second, Max: 5 * time.Minute}
	var lastLogged time.Time
	for ctx.Err() == nil {
		caughtUp, err := f.step(ctx)
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			f.setError(nil)
			if failures > 0 {
				cfg.Log.Info("CT log answers again", "log", f.log.Title())
			}
			failures = 0
			pause.Reset()
			f.mu.Lock()
			final := f.final
			f.mu.Unlock()
			if final {
				cfg.Log.Info("read-only CT log read to its final tree head", "log", f.log.Title(), "tree_size", f.pos.TreeSize)
				return true
			}
			poll := cfg.Poll
			if poll <= 0 {
				poll = DefaultPoll(f.log.Kind)
			}
			if caughtUp && source.Sleep(ctx, poll) != nil {
				return false
			}
			continue
		}
		f.setError(err)
		wait := pause.Next()
		failures++
		var later *RetryLaterError
		if errors.As(err, &later) {
			// The log said how long to wait: that is waited, and said at once, whatever
			// was said about this log a moment ago.
			wait = later.Wait
			f.setRetryAt(time.Now().Add(wait))
			cfg.Log.Warn("CT log asks us to wait (Retry-After); nothing is read from it until then", "log", f.log.Title(), "url", f.log.URL, "status", later.Status, "asked", later.Asked.String(), "retry_in", wait.Round(time.Second))
			lastLogged = time.Now()
		} else if errors.Is(err, ErrVerify) {
			f.verifyFailures.Add(1)
			// Nothing from this head is read; asking again soon would only repeat the refusal.
			wait = max(wait, time.Minute)
			cfg.Log.Error("CT log refused: what it sent does not verify, nothing from it is read", "log", f.log.Title(), "url", f.log.URL, "err", err)
		} else if time.Since(lastLogged) > time.Minute || failures == 1 {
			lastLogged = time.Now()
			cfg.Log.Warn("CT log unreachable or refusing; retrying", "log", f.log.Title(), "url", f.log.URL, "err", err, "retry_in", wait.Round(time.Second), "failures", failures)
		}
		if source.Sleep(ctx, wait) != nil {
			return false
		}
	}
	return false
}

// step fetches a head, verifies it against the last one, and reads up to it. caughtUp says the
// log had nothing more.
func (f *follower) step(ctx context.Context) (caughtUp bool, err error) {
	h, err := f.client.head(ctx)
	if err != nil {
		return false, err
	}
	if fin := f.log.Final; fin != nil && (h.Size != fin.Size || h.Root != fin.Root) {
		return false, verifyError("read-only log's tree head (size %d) is not its final tree head (size %d) from the log list", h.Size, fin.Size)
	}
	if (f.pos.TreeSize > 0 || f.resumed) && h.Size < f.pos.TreeSize {
		// An older head than the one verified: logs behind load balancers answer from a
		// frontend that lags. It is no fork when it is a prefix of the verified tree (proved
		// like any consistency); then there is simply nothing new yet.
		if err := f.client.consistent(ctx, h, f.headOf()); err != nil {
			return false, fmt.Errorf("an older head (%d entries) than the verified one (%d): %w", h.Size, f.pos.TreeSize, err)
		}
		f.staleHeads.Add(1)
		return true, nil
	}
	if f.pos.TreeSize > 0 || f.resumed {
		if err := f.client.consistent(ctx, f.headOf(), h); err != nil {
			return false, err
		}
	}
	if !f.resumed {
		if err := f.begin(ctx, h); err != nil {
			return false, err
		}
	} else if f.log.Kind == KindRFC6962 && f.pos.Next > 0 && len(f.pos.Compact) == 0 {
		if f.pos.Compact, err = f.client.frontier(ctx, h, f.pos.Next); err != nil {
			return false, err
		}
	}
	if h.Size > f.pos.TreeSize || f.pos.TreeSize == 0 {
		f.pos.TreeSize, f.pos.RootHash, f.pos.TreeTime = h.Size, append([]byte(nil), h.Root[:]...), h.Time
	}
	f.mu.Lock()
	f.treeSize, f.treeTime = h.Size, h.Time
	f.mu.Unlock()

	caughtUp = f.pos.Next >= h.Size
	for f.pos.Next < h.Size {
		c, err := f.client.fetch(ctx, h, f.pos.Compact, f.pos.Next, h.Size)
		if err != nil {
			return false, err
		}
		if c.next <= f.pos.Next {
			return false, fmt.Errorf("no progress reading at %d", f.pos.Next)
		}
		read := c.next - f.pos.Next
		f.pos.Next, f.pos.Compact, f.pos.Read = c.next, c.frontier, read
		if c.malformed > 0 {
			f.noteMalformed(c)
		}
		if err := f.deliver(ctx, c.entries, c.malformed); err != nil {
			return false, err
		}
	}
	if f.log.Final != nil {
		f.mu.Lock()
		f.final = true
		f.mu.Unlock()
	}
	return caughtUp, nil
}

// noteMalformed counts the chunk's unreadable entries and names the first of them in the log,
// with how many came since the last line, at most once a minute.
func (f *follower) noteMalformed(c chunk) {
	f.malformed.Add(int64(c.malformed))
	f.malformedUnsaid += int64(c.malformed)
	if time.Since(f.malformedSaid) < time.Minute {
		return
	}
	f.src.cfg.Log.Warn("CT log entries that cannot be read are counted as malformed and skipped; the rest is read", "log", f.log.Title(),
		"count", f.malformedUnsaid, "first_index", c.unread[0].index, "why", watcher.Clean(c.unread[0].why, 300))
	f.malformedSaid, f.malformedUnsaid = time.Now(), 0
}

// begin decides where a log never read before starts, and records that position at once: a
// restart before the first entry must not start at a later head and skip what came between.
func (f *follower) begin(ctx context.Context, h head) error {
	cfg := &f.src.cfg
	start, how := h.Size, "at its head"
	switch {
	case cfg.FromIndex != nil:
		start = min(max(*cfg.FromIndex, 0), h.Size)
		how = fmt.Sprintf("at index %d (--from-index)", start)
	case cfg.Backfill > 0 && h.Size > 0:
		since := cfg.Now().Add(-cfg.Backfill)
		i, err := f.firstSince(ctx, h, since)
		if err != nil {
			return fmt.Errorf("finding where %s of backfill starts: %w", cfg.Backfill, err)
		}
		start, how = i, fmt.Sprintf("%d entries back (--backfill %s)", h.Size-i, cfg.Backfill)
	}
	var frontier [][]byte
	if start > 0 && f.log.Kind == KindRFC6962 {
		var err error
		if frontier, err = f.client.frontier(ctx, h, start); err != nil {
			return err
		}
	}
	f.pos = watcher.LogPosition{LogID: f.log.ID, Name: f.log.Title(), URL: f.log.URL, TreeSize: h.Size,
		RootHash: append([]byte(nil), h.Root[:]...), TreeTime: h.Time, Next: start, Compact: frontier}
	f.resumed = true
	cfg.Log.Info("following a new CT log", "log", f.log.Title(), "kind", f.log.Kind, "tree_size", h.Size, "starting", how)
	return f.deliver(ctx, nil, 0)
}

// firstSince finds the first entry logged at or after since (log timestamps are close to
// ordered; a binary search over them is close enough to choose where a backfill starts).
func (f *follower) firstSince(ctx context.Context, h head, since time.Time) (int64, error) {
	var searchErr error
	i := sort.Search(int(h.Size), func(i int) bool {
		if searchErr != nil {
			return true
		}
		ts, err := f.client.entryTime(ctx, h, int64(i))
		if err != nil {
			searchErr = err
			return true
		}
		return !ts.Before(since)
	})
	return int64(i), searchErr
}

func (f *follower) deliver(ctx context.Context, entries []*Entry, malformed int) error {
	pos := f.pos
	pos.Compact = append([][]byte(nil), f.pos.Compact...)
	f.entries.Add(pos.Read)
	f.mu.Lock()
	f.next = pos.Next
	if len(entries) > 0 {
		f.nextTime = entries[len(entries)-1].Timestamp
	}
	f.mu.Unlock()
	select {
	case f.src.deliveries <- delivery{f: f, entries: entries, malformed: malformed, pos: pos}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
