package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/source"
)

const recordUsage = `usage: helpwatch record [--source public|URL] --out FILE [--duration 10m] [--max N]

Writes a live certstream to a file of JSON lines, one certificate message per line, for
'helpwatch watch --source FILE' to replay. Heartbeats and malformed frames are left out.
Stops after --duration, after --max messages, or on Ctrl-C; what was received is kept.`

func runRecord(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("record", recordUsage, stderr)
	sf := addSourceFlags(fs, "public")
	out := fs.String("out", "", "file to write (- for stdout); an existing file is appended to")
	duration := fs.Duration("duration", 0, "stop after this long (0: until interrupted)")
	maxMessages := fs.Int64("max", 0, "stop after this many messages (0: no limit)")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError("unexpected argument %q", rest[0])
	}
	if *out == "" {
		return usageError("--out is required")
	}
	var w io.Writer = stdout
	if *out != "-" {
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	rec := source.NewRecorder(bw)
	log := newLogger(stderr)

	ctx, stop := watchContext()
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var written atomic.Int64
	var writeErr error
	raw := func(frame []byte) {
		// A frame can arrive between the last wanted one and the source noticing the stop.
		if writeErr != nil || (*maxMessages > 0 && written.Load() >= *maxMessages) {
			return
		}
		if writeErr = rec.Write(frame); writeErr != nil {
			cancel()
			return
		}
		if n := written.Add(1); *maxMessages > 0 && n >= *maxMessages {
			cancel()
		}
	}
	src, err := sf.open(log, raw)
	if err != nil {
		return err
	}
	log.Info("recording", "source", src.String(), "out", *out)
	stats := &watcher.Stats{}
	started := time.Now()
	err = src.Run(ctx, func(*watcher.Event) {}, stats)
	if ferr := bw.Flush(); writeErr == nil {
		writeErr = ferr
	}
	log.Info("recorded", "messages", written.Load(), "malformed", stats.Malformed.Load(),
		"reconnects", stats.Reconnects.Load(), "elapsed", time.Since(started).Round(time.Millisecond))
	if writeErr != nil {
		return fmt.Errorf("writing %s: %w", *out, writeErr)
	}
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
