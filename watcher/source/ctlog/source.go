// Package ctlog follows Certificate Transparency logs directly, RFC 6962 logs and static-ct-api
// (tiled) logs alike, as certspotter does: every tree head's signature is checked against the
// key in the log list, every new head is proved consistent with the last one, and every entry
// is checked to be in the head it was read against before it is handed on. The position
// reached in each log goes to the store with the findings of the entries before it.
package ctlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/helpwatch/helpwatch/watcher"
)

// PositionStore gives back the positions stored by earlier runs.
type PositionStore interface {
	LogPositions(ctx context.Context) ([]watcher.LogPosition, error)
}

// LogLease gives each CT log to one process at a time (the store implements it: advisory
// locks on PostgreSQL). ok says this process may follow the log; lost, when it closes, says
// it may no longer.
type LogLease interface {
	TryLog(ctx context.Context, logID string) (ok bool, lost <-chan struct{}, err error)
}

// DefaultPoll is how often a caught-up log of kind is asked for a new head when Config.Poll is
// zero: a static-ct-api checkpoint is a small file served from a cache, asked for
// conditionally (If-None-Match, If-Modified-Since), every second, as the logs publish it; an
// RFC 6962 get-sth is computed by the log's frontend, every 2 seconds. See
// docs/performance.md for what that costs and buys.
func DefaultPoll(kind string) time.Duration {
	if kind == KindStatic {
		return time.Second
	}
	return 2 * time.Second
}

// Config configures a Source. Zero values take the defaults.
type Config struct {
	// List is the log list to follow (default: the built-in snapshot).
	List *List
	// ListURL, when set, is fetched again every ListRefresh (default 24 h); logs that join the
	// list are followed, logs that leave it are stopped (their positions stay stored).
	ListURL     string
	ListRefresh time.Duration
	// LoadList fetches ListURL (default: LoadList with HTTP's transport).
	LoadList func(ctx context.Context, url string) (*List, error)
	Filter   Filter
	// Transport is the connection layer (default http.DefaultTransport; the watch passes the
	// address guard's).
	Transport  http.RoundTripper
	Politeness Politeness
	// MaxInFlight bounds the requests in flight to all logs together (default 16): what bounds
	// memory whatever the logs send.
	MaxInFlight int
	// Poll is how long a caught-up log waits before asking for a new head; zero takes each
	// kind's default (DefaultPoll).
	Poll time.Duration
	// A log with no stored position starts at its head, or Backfill earlier, or at FromIndex
	// (when set).
	Backfill  time.Duration
	FromIndex *int64
	Positions PositionStore
	// Lease, when set, makes several watch processes share the logs: each log is followed
	// by the process holding its lease; the others try again every LeaseRetry (default 30 s)
	// and so take over the logs of one that died.
	Lease      LogLease
	LeaseRetry time.Duration
	Log        *slog.Logger
	UserAgent  string
	Now        func() time.Time
	// DedupeSize bounds the certificate fingerprints remembered to drop the copies of one
	// precertificate that several logs carry (default 65536).
	DedupeSize int
}

// Source follows the selected logs of a list. It is a watcher.Source that is not live: it
// reads at the pipeline's pace, so nothing is ever dropped.
type Source struct {
	cfg        Config
	global     chan struct{}
	deliveries chan delivery
	started    time.Time

	mu        sync.Mutex
	list      *List
	selection []Selection
	followers map[string]*follower // by log id
	stored    map[string]watcher.LogPosition

	crossLog atomic.Int64 // entries dropped as copies of an entry of another log
}

// New checks the configuration and selects the logs; nothing is fetched yet.
func New(cfg Config) (*Source, error) {
	if cfg.List == nil {
		cfg.List = Builtin()
	}
	if cfg.ListRefresh <= 0 {
		cfg.ListRefresh = 24 * time.Hour
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 16
	}
	if cfg.LeaseRetry <= 0 {
		cfg.LeaseRetry = 30 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DedupeSize <= 0 {
		cfg.DedupeSize = 1 << 16
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "helpwatch (CT monitor; +https://github.com/helpwatch/helpwatch)"
	}
	cfg.Politeness.defaults()
	s := &Source{cfg: cfg, global: make(chan struct{}, cfg.MaxInFlight), deliveries: make(chan delivery, 8),
		followers: map[string]*follower{}, list: cfg.List}
	if cfg.LoadList == nil {
		hc := &http.Client{Transport: cfg.Transport, Timeout: time.Minute}
		s.cfg.LoadList = func(_ context.Context, url string) (*List, error) { return LoadList(url, hc) }
	}
	sel, err := cfg.List.Select(cfg.Now(), cfg.Filter)
	if err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(sel, func(s Selection) bool { return s.Follow }) {
		return nil, fmt.Errorf("no log of %s can receive certificates issued now (%s)", cfg.List.Source, whyNot(sel))
	}
	s.selection = sel
	return s, nil
}

func whyNot(sel []Selection) string {
	parts := make([]string, 0, len(sel))
	for _, s := range sel {
		parts = append(parts, s.Name+": "+s.Why)
	}
	if len(parts) > 6 {
		parts = append(parts[:6], fmt.Sprintf("and %d more", len(parts)-6))
	}
	return strings.Join(parts, "; ")
}

// Selection is the list's logs and whether each is followed, and why.
func (s *Source) Selection() []Selection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.selection)
}

func (s *Source) Live() bool { return false }

func (s *Source) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, sel := range s.selection {
		if sel.Follow {
			n++
		}
	}
	return fmt.Sprintf("CT logs (%d followed, list %s)", n, s.list.Source)
}

// Status reports every followed log, in the list's order.
func (s *Source) Status() []watcher.LogStatus {
	s.mu.Lock()
	fs := make([]*follower, 0, len(s.followers))
	for _, sel := range s.selection {
		if f := s.followers[sel.ID]; f != nil {
			fs = append(fs, f)
		}
	}
	s.mu.Unlock()
	now := time.Now()
	out := make([]watcher.LogStatus, len(fs))
	for i, f := range fs {
		out[i] = f.status(now)
	}
	return out
}

// CrossLogDuplicates counts entries dropped because another log delivered the same
// (pre)certificate first.
func (s *Source) CrossLogDuplicates() int64 { return s.crossLog.Load() }

// Run follows the logs until ctx ends. It returns early only when the stored positions cannot
// be read (following without them would skip or repeat entries) or when every followed log is
// read-only and read to its final head.
func (s *Source) Run(ctx context.Context, emit func(*watcher.Event), stats *watcher.Stats) error {
	s.started = time.Now()
	if s.cfg.Positions != nil {
		stored, err := s.cfg.Positions.LogPositions(ctx)
		if err != nil {
			return fmt.Errorf("reading the stored CT log positions: %w", err)
		}
		s.stored = make(map[string]watcher.LogPosition, len(stored))
		for _, p := range stored {
			s.stored[p.LogID] = p
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		s.mu.Lock()
		fs := make([]*follower, 0, len(s.followers))
		for _, f := range s.followers {
			fs = append(fs, f)
		}
		s.mu.Unlock()
		for _, f := range fs {
			<-f.done
		}
	}()
	if err := s.apply(ctx, s.list, s.selection); err != nil {
		return err
	}
	var refresh <-chan time.Time
	if s.cfg.ListURL != "" {
		t := time.NewTicker(s.cfg.ListRefresh)
		defer t.Stop()
		refresh = t.C
	}
	seen, _ := simplelru.NewLRU[string, struct{}](s.cfg.DedupeSize, nil)
	deliver := func(d delivery) {
		stats.Touch()
		stats.Malformed.Add(int64(d.malformed))
		for _, e := range d.entries {
			if e.Fingerprint != "" {
				if _, dup := seen.Get(e.Fingerprint); dup {
					s.crossLog.Add(1)
					continue
				}
				seen.Add(e.Fingerprint, struct{}{})
			}
			stats.Messages.Add(1)
			emit(eventOf(e, &d.f.log))
		}
		pos := d.pos
		emit(&watcher.Event{Position: &pos, Cert: watcher.Certificate{Index: -1}})
	}
	allDone := s.allFinal()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-refresh:
			s.refresh(ctx)
		case <-allDone:
			if s.cfg.ListURL == "" {
				// Every follower has ended, but what they handed over last may still be
				// in the channel: delivered before the source ends.
				for {
					select {
					case d := <-s.deliveries:
						deliver(d)
					default:
						return nil
					}
				}
			}
			allDone = nil
		case d := <-s.deliveries:
			deliver(d)
		}
	}
}

// allFinal is closed once every follower has ended on its own (read-only logs read to their
// final heads).
func (s *Source) allFinal() <-chan struct{} {
	s.mu.Lock()
	fs := make([]*follower, 0, len(s.followers))
	for _, f := range s.followers {
		fs = append(fs, f)
	}
	s.mu.Unlock()
	ch := make(chan struct{})
	go func() {
		for _, f := range fs {
			<-f.done
		}
		close(ch)
	}()
	return ch
}

func eventOf(e *Entry, l *Log) *watcher.Event {
	ev := &watcher.Event{Names: e.Names, Seen: e.Timestamp, Cert: watcher.Certificate{
		LogName: l.Title(), LogURL: l.URL, Index: e.Index, Issuer: e.Issuer,
		NotBefore: e.NotBefore, NotAfter: e.NotAfter, Fingerprint: e.Fingerprint, Serial: e.Serial,
	}}
	if l.Kind == KindRFC6962 {
		ev.Cert.Link = fmt.Sprintf("%sct/v1/get-entries?start=%d&end=%d", l.URL, e.Index, e.Index)
	}
	ev.Sanitize()
	return ev
}

// apply starts followers for the selected logs that have none and stops those not selected.
func (s *Source) apply(ctx context.Context, list *List, sel []Selection) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]bool{}
	for _, x := range sel {
		if !x.Follow {
			continue
		}
		want[x.ID] = true
		if _, ok := s.followers[x.ID]; ok {
			continue
		}
		f, err := s.newFollower(x)
		if err != nil {
			return fmt.Errorf("CT log %s: %w", x.Title(), err)
		}
		if p, ok := s.stored[x.ID]; ok {
			f.resume(p)
			s.cfg.Log.Info("resuming a CT log", "log", x.Title(), "next_index", p.Next, "verified_tree_size", p.TreeSize)
		}
		fctx, cancel := context.WithCancel(ctx)
		f.cancel = cancel
		s.followers[x.ID] = f
		go f.run(fctx)
	}
	for id, f := range s.followers {
		if !want[id] {
			f.cancel()
			delete(s.followers, id)
			s.cfg.Log.Info("stopped following a CT log that left the log list (its position stays stored)", "log", f.log.Title(), "next_index", f.status(time.Now()).Next)
		}
	}
	s.list, s.selection = list, sel
	return nil
}

func (s *Source) newFollower(sel Selection) (*follower, error) {
	f := &follower{log: sel.Log, why: sel.Why, src: s, done: make(chan struct{})}
	hc := &http.Client{Transport: newTransport(s.cfg.Transport, s.cfg.Politeness, s.global, &f.httpErrors, s.cfg.UserAgent)}
	var err error
	switch sel.Kind {
	case KindRFC6962:
		f.client, err = newRFCLog(&f.log, hc, s.cfg.Politeness.Parallel)
	case KindStatic:
		f.client, err = newStaticLog(&f.log, hc, s.cfg.Politeness.Parallel)
	default:
		err = fmt.Errorf("unknown log kind %q", sel.Kind)
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// resume starts f at the position an earlier run stored.
func (f *follower) resume(p watcher.LogPosition) {
	f.pos, f.resumed = p, true
	f.pos.Name, f.pos.URL, f.pos.Read = f.log.Title(), f.log.URL, 0
	f.next, f.treeSize, f.treeTime = p.Next, p.TreeSize, p.TreeTime
}

// refresh fetches the log list again and follows what it now selects. A list that cannot be
// fetched or parsed keeps the current one.
func (s *Source) refresh(ctx context.Context) {
	list, err := s.cfg.LoadList(ctx, s.cfg.ListURL)
	if err != nil {
		s.cfg.Log.Warn("could not refresh the CT log list; keeping the current one", "url", s.cfg.ListURL, "err", err)
		return
	}
	list.Source = s.cfg.ListURL
	sel, err := list.Select(s.cfg.Now(), Filter{MaxValidity: s.cfg.Filter.MaxValidity, Exclude: s.cfg.Filter.Exclude, Only: s.cfg.Filter.Only})
	if err != nil {
		// A name in --logs that left the list: follow what is left of the others.
		sel, err = list.Select(s.cfg.Now(), Filter{MaxValidity: s.cfg.Filter.MaxValidity})
		if err != nil {
			s.cfg.Log.Warn("refreshed CT log list unusable; keeping the current one", "err", err)
			return
		}
		for i := range sel {
			if sel[i].Follow && len(s.cfg.Filter.Only) > 0 && !slices.ContainsFunc(s.cfg.Filter.Only, sel[i].Matches) {
				sel[i].Follow, sel[i].Why = false, "not in --logs"
			}
		}
	}
	if err := s.apply(ctx, list, sel); err != nil {
		s.cfg.Log.Warn("refreshed CT log list has a log that cannot be followed; keeping the current one", "err", err)
		return
	}
	s.cfg.Log.Info("refreshed the CT log list", "url", s.cfg.ListURL, "version", list.Version)
}

// Heads reports every log of the list for `helpwatch logs`: whether it is followed and why,
// its stored position, and (with fetch) its newest head, signature checked, to show the lag.
func Heads(ctx context.Context, s *Source, stored []watcher.LogPosition, fetch bool) []watcher.LogStatus {
	byID := map[string]watcher.LogPosition{}
	for _, p := range stored {
		byID[p.LogID] = p
	}
	sel := s.Selection()
	out := make([]watcher.LogStatus, len(sel))
	var wg sync.WaitGroup
	for i, x := range sel {
		st := watcher.LogStatus{Name: x.Title(), URL: x.URL, Kind: x.Kind, State: x.State, Followed: x.Follow, Why: x.Why, Next: -1}
		if p, ok := byID[x.ID]; ok {
			st.Next, st.TreeSize, st.TreeTime, st.Entries = p.Next, p.TreeSize, p.TreeTime, p.Read
		}
		out[i] = st
		if !x.Follow || !fetch {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := s.newFollower(x)
			if err == nil {
				var h head
				if h, err = f.client.head(ctx); err == nil {
					out[i].TreeSize, out[i].TreeTime = h.Size, h.Time
				}
			}
			if err != nil {
				out[i].LastError = watcher.Clean(err.Error(), 300)
				if errors.Is(err, ErrVerify) {
					out[i].VerifyFailures = 1
				}
			}
		}()
	}
	wg.Wait()
	return out
}
