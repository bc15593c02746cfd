package store

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

func TestLogPositionsAreStoredWithTheirBatch(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Now()
	frontier := [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)}
	pos := func(next, size, read int64, compact [][]byte) Sighting {
		return Sighting{Position: &watcher.LogPosition{LogID: "id-a", Name: "Test A", URL: "https://a.test/", TreeSize: size,
			RootHash: bytes.Repeat([]byte{9}, 32), TreeTime: now, Next: next, Compact: compact, Read: read}}
	}
	static := Sighting{Position: &watcher.LogPosition{LogID: "id-b", Name: "Test B", URL: "https://b.test/", TreeSize: 10, RootHash: make([]byte, 32), Next: 10, Read: 10}}
	batch := []Sighting{sighting(t, "hp-printer-help-desk.online", now, "fp1"), pos(100, 500, 100, frontier),
		sighting(t, "canon-ij-setup-help.com", now, "fp2"), pos(250, 500, 150, frontier), static}
	created, err := s.Save(ctx, batch, Counts{Messages: 250})
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 2 {
		t.Errorf("%d cases created, want 2 (markers are not names)", len(created))
	}
	ps, err := s.LogPositions(ctx)
	if err != nil || len(ps) != 2 {
		t.Fatalf("positions %v, %v", ps, err)
	}
	a := ps[0]
	if a.Next != 250 || a.TreeSize != 500 || a.Read != 250 || len(a.Compact) != 2 || !bytes.Equal(a.Compact[1], frontier[1]) || a.TreeTime.UnixMilli() != now.UnixMilli() {
		t.Errorf("stored %+v", a)
	}
	if b := ps[1]; b.Next != 10 || len(b.Compact) != 0 {
		t.Errorf("static log stored %+v", b)
	}
	// A position behind the stored one (another process on the same log) does not move it back.
	if _, err := s.Save(ctx, []Sighting{pos(200, 400, 5, nil)}, Counts{}); err != nil {
		t.Fatal(err)
	}
	if ps, _ := s.LogPositions(ctx); ps[0].Next != 250 || ps[0].Read != 250 {
		t.Errorf("moved back to %+v", ps[0])
	}
	// The same entries stored by two processes (a lease that changed hands while the old
	// holder still read) count once, and so does the overlap of two chunks.
	for range 2 {
		if _, err := s.Save(ctx, []Sighting{pos(300, 500, 50, nil)}, Counts{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Save(ctx, []Sighting{pos(320, 500, 40, nil)}, Counts{}); err != nil {
		t.Fatal(err)
	}
	if ps, _ := s.LogPositions(ctx); ps[0].Next != 320 || ps[0].Read != 320 {
		t.Errorf("entries read twice counted twice: %+v", ps[0])
	}
}
