package source

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "replay.jsonl")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func replayAll(t *testing.T, r *Replay) ([]*watcher.Event, *watcher.Stats, string) {
	t.Helper()
	var logBuf bytes.Buffer
	r.Log = slogTo(&logBuf)
	stats := &watcher.Stats{}
	var evs []*watcher.Event
	if err := r.Run(context.Background(), func(ev *watcher.Event) { evs = append(evs, ev) }, stats); err != nil {
		t.Fatal(err)
	}
	return evs, stats, logBuf.String()
}

func TestReplayMessagesCountsAndReportsBadLines(t *testing.T) {
	content := strings.Join([]string{
		certMessage("one.example", 1),
		``,
		`{"message_type":"heartbeat","timestamp":1}`,
		`{"message_type":"certificate_update","data":{`,
		`{"message_type":"dns_entries","data":["two.example","three.example"]}`,
		`{"message_type":"certificate_update","data":{"leaf_cert":{"all_domains":["` + strings.Repeat("a", MaxFrameBytes) + `"]}}}`,
		certMessage("four.example", 4),
	}, "\n")
	evs, stats, log := replayAll(t, &Replay{Path: writeFile(t, content)})
	var names []string
	for _, ev := range evs {
		names = append(names, ev.Names...)
	}
	if got := strings.Join(names, " "); got != "one.example two.example three.example four.example" {
		t.Errorf("names %q", got)
	}
	if stats.Messages.Load() != 3 || stats.Heartbeats.Load() != 1 || stats.Malformed.Load() != 1 || stats.Oversized.Load() != 1 {
		t.Errorf("messages %d heartbeats %d malformed %d oversized %d", stats.Messages.Load(), stats.Heartbeats.Load(),
			stats.Malformed.Load(), stats.Oversized.Load())
	}
	if !strings.Contains(log, "line=4") || !strings.Contains(log, "line=6") || !strings.Contains(log, "replay.jsonl") {
		t.Errorf("bad lines not reported with file and line:\n%s", log)
	}
}

func TestReplayPlainNameList(t *testing.T) {
	evs, stats, _ := replayAll(t, &Replay{Path: writeFile(t, "# newly registered today\nhp-help.example\tfeed-a\n\nCanon-Setup.example\n")})
	if len(evs) != 2 || evs[0].Names[0] != "hp-help.example" || evs[1].Names[0] != "Canon-Setup.example" || evs[0].Cert.Known() {
		t.Errorf("events %+v", evs)
	}
	if stats.Messages.Load() != 2 || evs[0].Seen.IsZero() {
		t.Errorf("messages %d, seen %v", stats.Messages.Load(), evs[0].Seen)
	}
}

func TestReplayRecordedPace(t *testing.T) {
	// Two messages recorded 2 s apart, replayed at 10x: a 200 ms wait between them; a recorded
	// gap of an hour is capped by MaxGap. The waits are recorded, not timed.
	content := `{"message_type":"certificate_update","data":{"seen":1000.0,"leaf_cert":{"all_domains":["a.example"]}}}
{"message_type":"certificate_update","data":{"seen":1002.0,"leaf_cert":{"all_domains":["b.example"]}}}
{"message_type":"certificate_update","data":{"seen":4602.0,"leaf_cert":{"all_domains":["c.example"]}}}
`
	var waits []time.Duration
	emitted := 0
	r := &Replay{Path: writeFile(t, content), Speed: 10, MaxGap: 300 * time.Millisecond, Log: quietLog(),
		wait: func(ctx context.Context, d time.Duration) error {
			if emitted != len(waits)+1 {
				t.Errorf("wait %d came after %d events: the pause must come between two messages", len(waits)+1, emitted)
			}
			waits = append(waits, d)
			return nil
		}}
	if err := r.Run(context.Background(), func(*watcher.Event) { emitted++ }, &watcher.Stats{}); err != nil {
		t.Fatal(err)
	}
	if emitted != 3 || len(waits) != 2 || waits[0] != 200*time.Millisecond || waits[1] != 300*time.Millisecond {
		t.Errorf("%d events, waits %v; want 3 events and waits [200ms 300ms]", emitted, waits)
	}

	// Cancelling a paced replay while it waits for the next line returns ctx's error: the first
	// event cancels during a recorded gap of two thousand seconds at this speed.
	ctx, cancel := context.WithCancel(context.Background())
	r = &Replay{Path: writeFile(t, content), Speed: 0.001, Log: quietLog()}
	if err := r.Run(ctx, func(*watcher.Event) { cancel() }, &watcher.Stats{}); err != context.Canceled {
		t.Errorf("cancelled replay returned %v", err)
	}
}

func TestReplayMissingFile(t *testing.T) {
	err := (&Replay{Path: filepath.Join(t.TempDir(), "nope.jsonl")}).Run(context.Background(), func(*watcher.Event) {}, &watcher.Stats{})
	if err == nil || !strings.Contains(err.Error(), "nope.jsonl") {
		t.Errorf("missing file: %v", err)
	}
}

func TestRecorderCompactsMultiLineFrames(t *testing.T) {
	var buf bytes.Buffer
	rec := NewRecorder(&buf)
	if err := rec.Write([]byte("{\n  \"message_type\": \"dns_entries\",\n  \"data\": [\"x.example\"]\n}\n")); err != nil {
		t.Fatal(err)
	}
	if err := rec.Write([]byte(certMessage("y.example", 2))); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || lines[0] != `{"message_type":"dns_entries","data":["x.example"]}` {
		t.Errorf("recorded %q", buf.String())
	}
}
