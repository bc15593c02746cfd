package capture

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procTree samples the processes started below this one (Chromium's browser, zygotes,
// renderers, GPU and utility processes): their CPU time, and the peak of their summed
// proportional set size (PSS: each shared page counted once across the tree, so the sum is
// what the tree really holds). rusage cannot measure them: a browser stopped by signal never
// waits for its children, so their time is never added to ours.
type procTree struct {
	stop    chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex
	ticks   map[int]uint64 // pid → utime+stime last seen, in clock ticks
	peakPSS uint64         // kB
	lastPSS uint64         // kB
	own     time.Duration  // the sampler's CPU
}

const rusageThread = 1 // RUSAGE_THREAD

const clockTick = 10 * time.Millisecond // CLK_TCK 100 on Linux

func watchProcTree(every time.Duration) *procTree {
	t := &procTree{stop: make(chan struct{}), ticks: map[int]uint64{}}
	t.done.Add(1)
	go func() {
		defer t.done.Done()
		// The sampling's own CPU is the benchmark's, not the capture's: it runs on a thread
		// of its own whose time finish subtracts.
		runtime.LockOSThread()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			t.sample()
			var ru syscall.Rusage
			syscall.Getrusage(rusageThread, &ru)
			t.mu.Lock()
			t.own = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			t.mu.Unlock()
			select {
			case <-t.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return t
}

// cpu is the tree's CPU time so far (a process that ended counts with its last sample), and
// the sampler's own.
func (t *procTree) cpu() (tree, sampler time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ticks uint64
	for _, v := range t.ticks {
		ticks += v
	}
	return time.Duration(ticks) * clockTick, t.own
}

// memory returns the tree's PSS at the last sample and its peak since the last call, in bytes.
func (t *procTree) memory() (now, peak uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now, peak = t.lastPSS<<10, t.peakPSS<<10
	t.peakPSS = t.lastPSS
	return now, peak
}

// finish stops sampling.
func (t *procTree) finish() {
	close(t.stop)
	t.done.Wait()
}

func (t *procTree) sample() {
	self := os.Getpid()
	parent := map[int]int{}
	cpu := map[int]uint64{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		stat, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		// The command name may hold spaces: fields start after its closing parenthesis.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseUint(f[11], 10, 64)
		st, _ := strconv.ParseUint(f[12], 10, 64)
		parent[pid], cpu[pid] = ppid, ut+st
	}
	below := func(pid int) bool {
		for n := 0; n < 64 && pid > 1; n++ {
			pid = parent[pid]
			if pid == self {
				return true
			}
		}
		return false
	}
	var pss uint64
	t.mu.Lock()
	defer t.mu.Unlock()
	for pid, ticks := range cpu {
		if !below(pid) {
			continue
		}
		t.ticks[pid] = max(t.ticks[pid], ticks)
		pss += pssOf(pid)
	}
	t.peakPSS = max(t.peakPSS, pss)
	t.lastPSS = pss
}

func pssOf(pid int) uint64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
