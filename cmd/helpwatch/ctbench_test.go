package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher/source/ctlog"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog/ctlogtest"
)

// BenchmarkWatch20Logs runs the real watch in a child process following 20 local logs (14
// RFC 6962 and 6 static-ct-api, as the built-in list has) from their first entry, and reports
// its throughput and its peak resident memory (VmHWM) once every entry of every log is stored.
func BenchmarkWatch20Logs(b *testing.B) {
	const perLog = 10_000
	var logs []*ctlogtest.Log
	for i := range 20 {
		kind := ctlog.KindRFC6962
		if i%10 >= 7 {
			kind = ctlog.KindStatic
		}
		l := ctlogtest.NewLog(b, kind, fmt.Sprintf("Bench%02d", i))
		l.Add(ctlogtest.StreamEntries(perLog, uint64(i))...)
		l.Publish()
		logs = append(logs, l)
	}
	list := filepath.Join(b.TempDir(), "list.json")
	if err := ctlogtest.WriteList(list, logs...); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		db := filepath.Join(b.TempDir(), "h.db")
		b.StartTimer()
		start := time.Now()
		cmd, stderr := childWatchB(b, "--log-list", list, "--allow-host", "127.0.0.1", "--db", db, "--from-index", "0",
			"--log-poll", "100ms", "--log-rate", "0", "--status-every", "0")
		exited := make(chan struct{})
		go func() { cmd.Process.Wait(); close(exited) }()
		for {
			ps := positionsIn(nil, db)
			done := len(ps) == len(logs)
			for _, p := range ps {
				done = done && p.Next == perLog
			}
			if done {
				break
			}
			select {
			case <-exited:
				b.Fatalf("watch ended:\n%s", stderr)
			case <-time.After(50 * time.Millisecond):
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		rss := peakRSS(cmd.Process.Pid)
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
		b.ReportMetric(float64(perLog*len(logs))/elapsed.Seconds(), "entries/s")
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MB")
		b.StartTimer()
	}
}

func childWatchB(b *testing.B, args ...string) (*execCmd, *lockedBuilder) {
	cmd := newChild(append([]string{"watch", "--enrich=false", "--site-check=false"}, args...)...)
	stderr := &lockedBuilder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd, stderr
}

// peakRSS reads a process's peak resident set size (Linux VmHWM), in bytes.
func peakRSS(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return -1
}
