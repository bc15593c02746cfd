package pipeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/helpwatch/helpwatch/watcher/testkit"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/source"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

var quiet = testkit.Quiet

var defaultRules = testkit.DefaultRules

var waitFor = testkit.WaitFor

func openStore(t testing.TB) *store.SQL {
	t.Helper()
	s, err := store.Open(context.Background(), storetest.Where(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sliceSource emits fixed events; live sources do not wait for the pipeline.
type sliceSource struct {
	events []*watcher.Event
	live   bool
	// hold keeps a live source running after its events until ctx ends.
	hold bool
}

func (s *sliceSource) Live() bool     { return s.live }
func (s *sliceSource) String() string { return "test source" }
func (s *sliceSource) Run(ctx context.Context, emit func(*watcher.Event), stats *watcher.Stats) error {
	for _, ev := range s.events {
		stats.Messages.Add(1)
		emit(ev)
	}
	if s.hold {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func event(fp string, names ...string) *watcher.Event {
	return &watcher.Event{Names: names, Seen: time.Now(), Cert: watcher.Certificate{LogURL: "log.test/", Index: 1, Fingerprint: fp}}
}

// names maps every stored name to its case.
func names(t testing.TB, s store.Store) map[string]watcher.Case {
	t.Helper()
	cs, err := s.Cases(context.Background(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]watcher.Case{}
	for _, c := range cs {
		for _, n := range c.Names {
			out[n.Name] = c
		}
	}
	return out
}

func cases(t *testing.T, s store.Store) int {
	t.Helper()
	cs, err := s.Cases(context.Background(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	return len(cs)
}

// Names are stored once in their canonical spelling, grouped into cases by registrable
// domain; only a new case is emitted; certificates count once.
func TestRunStoresCasesOnceAndCountsCertificates(t *testing.T) {
	db := openStore(t)
	src := &sliceSource{events: []*watcher.Event{
		event("A", "hp-printer-setup-help.com", "www.hp-printer-setup-help.com", "example.org"),
		event("A", "hp-printer-setup-help.com"),   // the same certificate in another log
		event("B", "*.HP-Printer-Setup-Help.com"), // a second certificate; same name after dedupe
		event("C", "weather.example", "canon-ij-setup-support.online"),
	}}
	var emitted []string
	stats := &watcher.Stats{}
	err := Run(context.Background(), src, Config{Rules: defaultRules(t), Store: db, Stats: stats, Log: quiet(),
		Emit: func(c *watcher.Case) { emitted = append(emitted, c.Registrable) }})
	if err != nil {
		t.Fatal(err)
	}
	got := names(t, db)
	if len(got) != 3 || cases(t, db) != 2 {
		t.Fatalf("stored %d names in %d cases: %v", len(got), cases(t, db), got)
	}
	if c := got["hp-printer-setup-help.com"]; c.CertCount != 2 || c.Score.Verdict != rules.VerdictAlert || c.Cert.Fingerprint != "A" ||
		len(c.Names) != 2 || got["www.hp-printer-setup-help.com"].Registrable != c.Registrable {
		t.Errorf("hp case %+v", c)
	}
	if strings.Join(emitted, " ") != "hp-printer-setup-help.com canon-ij-setup-support.online" {
		t.Errorf("emitted %v", emitted)
	}
	if stats.Names.Load() != 5 || stats.Duplicates.Load() != 2 || stats.Findings.Load() != 2 {
		t.Errorf("names %d duplicates %d new cases %d", stats.Names.Load(), stats.Duplicates.Load(), stats.Findings.Load())
	}

	// Running the same events again (a restart replaying the same file) adds nothing.
	emitted = nil
	if err := Run(context.Background(), src, Config{Rules: defaultRules(t), Store: db, Log: quiet(),
		Emit: func(c *watcher.Case) { emitted = append(emitted, c.Registrable) }}); err != nil {
		t.Fatal(err)
	}
	again := names(t, db)
	if len(emitted) != 0 || len(again) != 3 || again["hp-printer-setup-help.com"].CertCount != 2 {
		t.Errorf("second run emitted %v and left %+v", emitted, again["hp-printer-setup-help.com"])
	}
}

// slowStore delays every Save, standing in for a disk that cannot keep up.
type slowStore struct {
	store.Store
	delay time.Duration
	fail  atomic.Int32 // fail this many Saves first
	saved atomic.Int64
}

func (s *slowStore) Save(ctx context.Context, batch []store.Sighting, c store.Counts) ([]watcher.Case, error) {
	time.Sleep(s.delay)
	if s.fail.Load() > 0 {
		s.fail.Add(-1)
		return nil, errors.New("disk full")
	}
	s.saved.Add(int64(len(batch)))
	return s.Store.Save(ctx, batch, c)
}

func TestLiveSourceDropsAreCountedNotSilent(t *testing.T) {
	db := &slowStore{Store: openStore(t), delay: 50 * time.Millisecond}
	const n = 5000
	var evs []*watcher.Event
	for i := 0; i < n; i++ {
		evs = append(evs, event(fmt.Sprint(i), fmt.Sprintf("hp-printer-setup-%d.com", i)))
	}
	stats := &watcher.Stats{}
	err := Run(context.Background(), &sliceSource{events: evs, live: true}, Config{Rules: defaultRules(t), Store: db, Stats: stats,
		Log: quiet(), QueueEvents: 64, BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	dropped, stored := stats.Dropped.Load(), int64(len(names(t, db)))
	if dropped == 0 {
		t.Fatal("a live source outran a slow store and nothing was dropped: the pipeline must have blocked the source")
	}
	if dropped+stored != n {
		t.Errorf("dropped %d + stored %d != %d sent: events went missing without being counted", dropped, stored, n)
	}
	days, _ := db.Store.(*store.SQL).DailyCounts(context.Background())
	if len(days) != 1 || days[0].Dropped != dropped || days[0].Messages != n {
		t.Errorf("daily counts %+v, want %d messages and %d dropped", days, n, dropped)
	}
}

func TestReplayIsNeverDropped(t *testing.T) {
	db := &slowStore{Store: openStore(t), delay: 5 * time.Millisecond}
	const n = 3000
	var evs []*watcher.Event
	for i := 0; i < n; i++ {
		evs = append(evs, event(fmt.Sprint(i), fmt.Sprintf("canon-printer-help-%d.com", i)))
	}
	stats := &watcher.Stats{}
	if err := Run(context.Background(), &sliceSource{events: evs}, Config{Rules: defaultRules(t), Store: db, Stats: stats,
		Log: quiet(), QueueEvents: 16, BatchSize: 50}); err != nil {
		t.Fatal(err)
	}
	if stats.Dropped.Load() != 0 || len(names(t, db)) != n {
		t.Errorf("dropped %d, stored %d of %d", stats.Dropped.Load(), len(names(t, db)), n)
	}
}

func TestFailingStoreKeepsBatchAndRetries(t *testing.T) {
	db := &slowStore{Store: openStore(t)}
	db.fail.Store(3)
	stats := &watcher.Stats{}
	src := &sliceSource{events: []*watcher.Event{event("A", "epson-printer-support-line.com"), event("B", "xerox-printer-setup-help.com")}}
	if err := Run(context.Background(), src, Config{Rules: defaultRules(t), Store: db, Stats: stats, Log: quiet(),
		BatchSize: 1, FlushEvery: 10 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if got := names(t, db); len(got) != 2 || stats.StoreErrs.Load() != 3 {
		t.Errorf("stored %d names with %d store errors; want 2 and 3", len(got), stats.StoreErrs.Load())
	}
}

// A source that ended by itself (a replay read to its end) waits for its last batch however
// long the store takes: the shutdown budget is for stops, not for the end of a file.
func TestFinishedReplayWaitsForItsLastBatch(t *testing.T) {
	db := &slowStore{Store: openStore(t)}
	db.fail.Store(4) // the last (and only) batch fails four times: a loaded database
	var evs []*watcher.Event
	for i := 0; i < 200; i++ {
		evs = append(evs, event(fmt.Sprint(i), fmt.Sprintf("hp-printer-offline-help-%d.com", i)))
	}
	err := Run(context.Background(), &sliceSource{events: evs}, Config{Rules: defaultRules(t), Store: db, Log: quiet(),
		BatchSize: 1000, FlushEvery: time.Hour, ShutdownBudget: time.Nanosecond, SpillDir: t.TempDir()})
	if err != nil {
		t.Fatalf("a finished replay lost its last batch: %v", err)
	}
	if got := len(names(t, db)); got != 200 {
		t.Errorf("stored %d of 200", got)
	}
}

// A stop while the store is broken ends within the budget, says how many sightings it could
// not store and writes them to a file that a replay stores, certificates included.
func TestBrokenStoreAtShutdownIsReportedAndSpilled(t *testing.T) {
	db := &slowStore{Store: openStore(t)}
	db.fail.Store(1 << 30)
	var evs []*watcher.Event
	for i := 0; i < 300; i++ {
		evs = append(evs, event(fmt.Sprintf("FP%d", i), fmt.Sprintf("canon-printer-help-%d.com", i)))
	}
	stats := &watcher.Stats{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	rs := defaultRules(t)
	dir := t.TempDir()
	go func() {
		done <- Run(ctx, &sliceSource{events: evs, live: true, hold: true}, Config{Rules: rs, Store: db, Stats: stats,
			Log: quiet(), BatchSize: 5, FlushEvery: 10 * time.Millisecond, ShutdownBudget: 200 * time.Millisecond, SpillDir: dir})
	}()
	waitFor(t, "three failed saves", 10*time.Second, func() bool { return stats.StoreErrs.Load() >= 3 })
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a watch with a broken store did not stop")
	}
	kept := 300 - stats.Dropped.Load()
	want := fmt.Sprintf("%d sightings could not be stored before shutdown", kept)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Run returned %v; want %q and the file in %s", err, want, dir)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "helpwatch-unstored-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("spill files: %v", files)
	}
	// Replayed into a working store, the file stores every one of them with its certificate.
	fresh := openStore(t)
	if err := Run(context.Background(), &source.Replay{Path: files[0], Log: quiet()}, Config{Rules: rs, Store: fresh, Log: quiet()}); err != nil {
		t.Fatal(err)
	}
	got := names(t, fresh)
	if int64(len(got)) != kept {
		t.Fatalf("the replayed file stored %d names, want %d", len(got), kept)
	}
	for n, c := range got {
		if !strings.HasPrefix(c.Cert.Fingerprint, "FP") || c.Cert.LogURL != "log.test/" {
			t.Errorf("%s came back without its certificate: %+v", n, c.Cert)
		}
	}
}

func TestCancelStoresWhatWasQueued(t *testing.T) {
	db := openStore(t)
	var evs []*watcher.Event
	for i := 0; i < 500; i++ {
		evs = append(evs, event(fmt.Sprint(i), fmt.Sprintf("brother-printer-support-%d.net", i)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stats := &watcher.Stats{}
	rs := defaultRules(t)
	go func() {
		done <- Run(ctx, &sliceSource{events: evs, live: true, hold: true}, Config{Rules: rs, Store: db, Stats: stats,
			Log: quiet(), FlushEvery: time.Hour})
	}()
	waitFor(t, "500 names scored", 10*time.Second, func() bool { return stats.Names.Load() >= 500 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop within 5 s")
	}
	if got := len(names(t, db)); got != 500 {
		t.Errorf("stored %d of 500 after cancel (flush interval was an hour: the final flush must store them)", got)
	}
}

// The whole live path: a certstream server that drops the connection mid-stream, our client,
// the pipeline and SQLite. Every message sent before the disconnect is stored exactly once.
func TestStreamDisconnectStoresEveryMessageOnce(t *testing.T) {
	const perConn = 50
	var mu sync.Mutex
	conns := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		mu.Lock()
		conns++
		n := conns
		mu.Unlock()
		if n > 3 {
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					return
				}
			}
		}
		for i := 0; i < perConn; i++ {
			idx := (n-1)*perConn + i
			msg := fmt.Sprintf(`{"message_type":"certificate_update","data":{"cert_index":%d,"leaf_cert":{"all_domains":["hp-printer-setup-%d.com","benign-%d.example"],"fingerprint":"F%d"},"source":{"url":"log.test/"}}}`, idx, idx, idx, idx)
			c.WriteMessage(websocket.TextMessage, []byte(msg))
		}
		c.UnderlyingConn().Close() // no close frame: a dropped connection
	}))
	defer srv.Close()
	db := openStore(t)
	stats := &watcher.Stats{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	src := &source.Stream{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Log: quiet(),
		Backoff: source.Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond}}
	rs := defaultRules(t)
	go func() {
		done <- Run(ctx, src, Config{Rules: rs, Store: db, Stats: stats, Log: quiet(), FlushEvery: 20 * time.Millisecond})
	}()
	waitFor(t, "three connections' messages", 10*time.Second, func() bool { return stats.Messages.Load() >= 3*perConn })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := names(t, db)
	if len(got) != 3*perConn {
		t.Fatalf("stored %d names, want %d", len(got), 3*perConn)
	}
	for i := 0; i < 3*perConn; i++ {
		f, ok := got[fmt.Sprintf("hp-printer-setup-%d.com", i)]
		if !ok || f.CertCount != 1 || f.Cert.Index != int64(i) {
			t.Errorf("message %d: stored %v, finding %+v", i, ok, f)
		}
	}
	// Two connections were cut before the last one's messages; the third cut may come after
	// the stop.
	if stats.Reconnects.Load() < 2 || stats.Dropped.Load() != 0 {
		t.Errorf("reconnects %d dropped %d", stats.Reconnects.Load(), stats.Dropped.Load())
	}
}

// recordingStore keeps each batch it was given.
type recordingStore struct {
	*store.SQL
	mu      sync.Mutex
	batches [][]store.Sighting
}

func (r *recordingStore) Save(ctx context.Context, batch []store.Sighting, c store.Counts) ([]watcher.Case, error) {
	r.mu.Lock()
	r.batches = append(r.batches, append([]store.Sighting(nil), batch...))
	r.mu.Unlock()
	return r.SQL.Save(ctx, batch, c)
}

func TestBatchesEndAtLogPositions(t *testing.T) {
	// Chunks of three scam names, each followed by the position it reaches; batches of five
	// sightings would split a chunk from its position if they were not cut at the markers.
	var events []*watcher.Event
	for chunk := range 5 {
		for i := range 3 {
			events = append(events, event(fmt.Sprintf("fp%d-%d", chunk, i), fmt.Sprintf("hp-printer-help-desk-%d-%d.online", chunk, i)))
		}
		events = append(events, &watcher.Event{Position: &watcher.LogPosition{LogID: "log", Name: "Test", TreeSize: 15, RootHash: make([]byte, 32),
			Next: int64(3 * (chunk + 1)), Read: 3}})
	}
	rec := &recordingStore{SQL: openStore(t)}
	err := Run(context.Background(), &sliceSource{events: events}, Config{Rules: defaultRules(t), Store: rec, Log: quiet(), BatchSize: 5, FlushEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range rec.batches {
		if len(b) > 0 && b[len(b)-1].Position == nil {
			t.Errorf("batch %d of %d ends with a name, not a position: its entries' position would be committed later", i, len(b))
		}
	}
	ps, _ := rec.LogPositions(context.Background())
	if len(ps) != 1 || ps[0].Next != 15 || ps[0].Read != 15 {
		t.Errorf("positions %+v", ps)
	}
	if n := cases(t, rec); n != 15 {
		t.Errorf("%d cases, want 15", n)
	}
}

// A CT watch stopped while its store is broken moves no log position past what it could not
// store: the error says the entries will be read again, and the store holds no position for
// them, so the next watch starts before them (as TestWatchFollowsCTLogsThroughKill9 shows a
// restart does from the stored positions).
func TestStopWithUnstoredCTEntriesKeepsTheirPosition(t *testing.T) {
	real := openStore(t)
	db := &slowStore{Store: real}
	db.fail.Store(1 << 30)
	var evs []*watcher.Event
	for i := 0; i < 40; i++ {
		evs = append(evs, event(fmt.Sprintf("FP%d", i), fmt.Sprintf("epson-printer-help-%d.com", i)))
		if i%10 == 9 {
			evs = append(evs, &watcher.Event{Position: &watcher.LogPosition{LogID: "log-a", Name: "a", URL: "https://a.test/",
				TreeSize: 100, RootHash: make([]byte, 32), Next: int64(i + 1), Read: 10}})
		}
	}
	stats := &watcher.Stats{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, &sliceSource{events: evs, live: true, hold: true}, Config{Rules: defaultRules(t), Store: db, Stats: stats,
			Log: quiet(), BatchSize: 5, FlushEvery: 10 * time.Millisecond, ShutdownBudget: 100 * time.Millisecond, SpillDir: t.TempDir()})
	}()
	waitFor(t, "a failed save", 10*time.Second, func() bool { return stats.StoreErrs.Load() >= 1 })
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the watch did not stop")
	}
	if err == nil || !strings.Contains(err.Error(), "the next watch reads those entries again") {
		t.Fatalf("Run returned %v", err)
	}
	if ps, err := real.LogPositions(context.Background()); err != nil || len(ps) != 0 {
		t.Errorf("positions stored past unstored entries: %+v %v", ps, err)
	}
}
