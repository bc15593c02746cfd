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
	// Two messages recorded 2 s apart, replayed at 10x: at least 200 ms apart (less is too fast);
	// a recorded gap of an hour is capped by MaxGap.
	content := `{"message_type":"certificate_update","data":{"seen":1000.0,"leaf_cert":{"all_domains":["a.example"]}}}
{"message_type":"certificate_update","data":{"seen":1002.0,"leaf_cert":{"all_domains":["b.example"]}}}
{"message_type":"certificate_update","data":{"seen":4602.0,"leaf_cert":{"all_domains":["c.example"]}}}
`
	var at []time.Time
	r := &Replay{Path: writeFile(t, content), Speed: 10, MaxGap: 300 * time.Millisecond, Log: quietLog()}
	if err := r.Run(context.Background(), func(*watcher.Event) { at = append(at, time.Now()) }, &watcher.Stats{}); err != nil {
		t.Fatal(err)
	}
	if len(at) != 3 {
		t.Fatalf("%d events", len(at))
	}
	if gap := at[1].Sub(at[0]); gap < 200*time.Millisecond {
		t.Errorf("recorded 2 s gap replayed at 10x took %v, want at least 200 ms", gap)
	}
	if gap := at[2].Sub(at[1]); gap < 300*time.Millisecond || gap > 3*time.Second {
		t.Errorf("an hour-long recorded gap took %v, want the 300 ms cap", gap)
	}

	// Cancelling a paced replay while it waits for the next line returns at once: the first
	// event cancels, and the recorded gap before the second is two thousand seconds at this
	// speed.
	ctx, cancel := context.WithCancel(context.Background())
	r = &Replay{Path: writeFile(t, content), Speed: 0.001, Log: quietLog()}
	start := time.Now()
	if err := r.Run(ctx, func(*watcher.Event) { cancel() }, &watcher.Stats{}); err != context.Canceled {
		t.Errorf("cancelled replay returned %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the cancelled replay returned after %s", took)
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
