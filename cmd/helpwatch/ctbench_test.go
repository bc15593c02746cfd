package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// BenchmarkTimeToAlert measures, on the real watch in a child process with its default poll,
// following 20 local logs (14 RFC 6962, 6 static-ct-api), how long a scam name takes from its
// entry's timestamp (the SCT's) to its case on the watch's output (printed after it is stored).
// Names go into random logs at random moments; it reports the median and p99, and how many
// head requests (get-sth, checkpoint) each log got per hour.
func BenchmarkTimeToAlert(b *testing.B) {
	const samples = 60
	ca := ctlogtest.NewCA()
	var logs []*ctlogtest.Log
	var heads atomic.Int64
	for i := range 20 {
		kind := ctlog.KindRFC6962
		if i%10 >= 7 {
			kind = ctlog.KindStatic
		}
		l := ctlogtest.NewLog(b, kind, fmt.Sprintf("Alert%02d", i))
		l.Add(ca.CertEntry(fmt.Sprintf("before%d.example", i)))
		l.Publish()
		l.Hook = func(_ http.ResponseWriter, r *http.Request) bool {
			if ctlogtest.IsHead(r) {
				heads.Add(1)
			}
			return false
		}
		logs = append(logs, l)
	}
	list := filepath.Join(b.TempDir(), "list.json")
	if err := ctlogtest.WriteList(list, logs...); err != nil {
		b.Fatal(err)
	}
	extra := strings.Fields(os.Getenv("HELPWATCH_BENCH_WATCH_ARGS")) // e.g. --log-poll 10s, to compare
	var all []time.Duration
	var perLogHour float64
	for n := range b.N {
		db := filepath.Join(b.TempDir(), "h.db")
		cmd := newChild(append([]string{"watch", "--enrich=false", "--site-check=false", "--log-list", list, "--allow-host", "127.0.0.1",
			"--db", db, "--status-every", "0", "--format", "jsonl"}, extra...)...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		stderr := &lockedBuilder{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		arrived := make(chan [2]any, samples)
		go func() {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				var c struct {
					Registrable string `json:"registrable"`
				}
				if json.Unmarshal(sc.Bytes(), &c) == nil {
					arrived <- [2]any{c.Registrable, time.Now()}
				}
			}
		}()
		waitFor(b, "the watch to start on every log", 60*time.Second, func() bool { return len(positionsIn(nil, db)) == len(logs) })
		// The names arrive at random moments, 0-400 ms apart, each into a random log: timers,
		// so that the arrivals are the workload and nothing here waits on the clock.
		rng := rand.New(rand.NewPCG(uint64(n), 7))
		var smu sync.Mutex
		sent := map[string]time.Time{}
		heads.Store(0)
		start := time.Now()
		var at time.Duration
		for i := range samples {
			name := fmt.Sprintf("hp-printer-support-number-%d-%d.com", n, i)
			l := logs[rng.IntN(len(logs))]
			time.AfterFunc(at, func() {
				e := ca.CertEntry(name)
				smu.Lock()
				sent[name] = e.Timestamp // before the log has it: an arrival always finds it
				smu.Unlock()
				l.Add(e)
				l.Publish()
			})
			at += time.Duration(rng.IntN(400)) * time.Millisecond
		}
		deadline := time.Now().Add(at + 60*time.Second)
		for got := 0; got < samples; {
			select {
			case a := <-arrived:
				smu.Lock()
				at, ok := sent[a[0].(string)]
				smu.Unlock()
				if ok {
					all = append(all, a[1].(time.Time).Sub(at))
					got++
				}
			case <-time.After(time.Until(deadline)):
				b.Fatalf("%d of %d names arrived:\n%s", got, samples, stderr)
			}
		}
		perLogHour = float64(heads.Load()) / float64(len(logs)) / time.Since(start).Hours()
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	slices.Sort(all)
	b.ReportMetric(float64(all[len(all)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Milliseconds()), "p99-ms")
	b.ReportMetric(float64(all[len(all)-1].Milliseconds()), "max-ms")
	b.ReportMetric(perLogHour, "head-requests/log/h")
}
