package source

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

// MaxFrameBytes bounds one certstream frame or replay line. Full-stream messages with the chain
// and DER are about 10 KB; certificates with hundreds of names reach a few hundred KB.
const MaxFrameBytes = 1 << 20

// Replay reads a recorded stream: a JSONL file of certstream messages (what `helpwatch record`
// writes) or a plain list of names, one per line (newly-registered-domain feeds). The format is
// decided by the first non-blank line: '{' means messages.
type Replay struct {
	Path string // "-" is standard input
	// Speed 0 replays as fast as the pipeline takes it; 1 keeps the recorded gaps between the
	// messages' seen times, 10 replays ten times faster. Name lists have no times.
	Speed float64
	// MaxGap caps one recorded pause (a recording spanning a night should not stall a demo).
	MaxGap time.Duration
	Log    *slog.Logger

	// wait keeps the recorded pace (default Sleep); tests record the waits instead of timing.
	wait func(ctx context.Context, d time.Duration) error
}

func (r *Replay) Live() bool     { return false }
func (r *Replay) String() string { return "replay " + r.Path }

// Run reads the file to the end. Bad lines are counted, logged with their line number and
// skipped; only a read error ends the replay early.
func (r *Replay) Run(ctx context.Context, emit func(*watcher.Event), stats *watcher.Stats) error {
	f, err := OpenNameFile(r.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	var (
		decided, messages bool
		prevSeen          time.Time
		logged            int
	)
	report := func(lineNo int, msg string) {
		if logged < 20 { // a wrong file would otherwise log every line
			log.Warn("skipping replay line", "file", r.Path, "line", lineNo, "problem", msg)
		} else if logged == 20 {
			log.Warn("more bad replay lines; counting them without logging", "file", r.Path)
		}
		logged++
	}
	err = readLines(f, MaxFrameBytes, func(lineNo int, raw []byte, tooLong bool) error {
		if lineNo%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if tooLong {
			stats.Oversized.Add(1)
			report(lineNo, fmt.Sprintf("line longer than %d bytes", MaxFrameBytes))
			return nil
		}
		line := bytes.TrimSpace(raw)
		if len(line) == 0 || line[0] == '#' {
			return nil
		}
		if !decided {
			decided, messages = true, line[0] == '{'
		}
		stats.Touch()
		if !messages {
			name, ok := parseNameLine(line, NameListOptions{FirstField: true}, lineNo)
			if ok {
				stats.Messages.Add(1)
				emit(&watcher.Event{Names: []string{name}, Seen: time.Now().UTC(), Cert: watcher.Certificate{Index: -1}})
			}
			return nil
		}
		ev := &watcher.Event{}
		kind, err := DecodeMessage(line, ev)
		if err != nil {
			stats.Malformed.Add(1)
			report(lineNo, DescribeDecodeError(err, line))
			return nil
		}
		if countSkipped(kind, stats) {
			return nil
		}
		stats.Messages.Add(1)
		if r.Speed > 0 && !ev.Seen.IsZero() {
			if !prevSeen.IsZero() && ev.Seen.After(prevSeen) {
				gap := time.Duration(float64(ev.Seen.Sub(prevSeen)) / r.Speed)
				if r.MaxGap > 0 && gap > r.MaxGap {
					gap = r.MaxGap
				}
				wait := r.wait
				if wait == nil {
					wait = Sleep
				}
				if err := wait(ctx, gap); err != nil {
					return err
				}
			}
			prevSeen = ev.Seen
		}
		if ev.Seen.IsZero() {
			ev.Seen = time.Now().UTC()
		}
		emit(ev)
		return nil
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: %w", r.Path, err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// Sleep waits d or until ctx is done (then it returns ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Recorder writes frames as JSONL that Replay reads back: one message per line, heartbeats left
// out. Frames with raw newlines (pretty-printed JSON from some servers) are compacted first.
type Recorder struct {
	w   io.Writer
	buf bytes.Buffer
}

func NewRecorder(w io.Writer) *Recorder { return &Recorder{w: w} }

// Write records one frame; the caller has already decoded it successfully.
func (r *Recorder) Write(frame []byte) error {
	frame = bytes.TrimSpace(frame)
	if bytes.IndexByte(frame, '\n') >= 0 {
		r.buf.Reset()
		if err := json.Compact(&r.buf, frame); err != nil {
			return err
		}
		frame = r.buf.Bytes()
	}
	if _, err := r.w.Write(frame); err != nil {
		return err
	}
	_, err := r.w.Write([]byte{'\n'})
	return err
}
