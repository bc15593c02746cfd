package capture

import (
	"context"
	"runtime/metrics"
	"syscall"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher/capture/capturetest"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/site"
	"github.com/helpwatch/helpwatch/watcher/testkit"
)

func cpuTime(who int) time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCapture is one capture of a cloaking site with both profiles: Chromium started,
// two pages loaded and screenshotted, bands drawn, the hosting network looked up. It reports
// the CPU of helpwatch and of its Chromium together per capture, the peak resident memory of
// the largest Chromium process, and the Go heap's peak.
func BenchmarkCapture(b *testing.B) {
	testkit.NeedBrowser(b)
	srv := cloakingSite(b)
	boot, _ := capturetest.HostingRDAP(b)
	guard := loopbackGuard(b)
	c := &Capturer{Rules: testkit.DefaultRules(b), Fetcher: &site.Fetcher{Guard: guard, Timeout: 5 * time.Second},
		Renderer: &site.Renderer{Timeout: 60 * time.Second}, Hosting: &enrich.Hosting{Bootstraps: []string{boot}, Guard: guard}}
	name := srv.Listener.Addr().String()
	heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peakHeap uint64
	cpu0 := cpuTime(syscall.RUSAGE_SELF) + cpuTime(syscall.RUSAGE_CHILDREN)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, _ := c.Capture(context.Background(), name)
		if !got.Observed() {
			b.Fatalf("capture saw %s", got.Verdict)
		}
		metrics.Read(heap)
		peakHeap = max(peakHeap, heap[0].Value.Uint64())
	}
	b.StopTimer()
	cpu := cpuTime(syscall.RUSAGE_SELF) + cpuTime(syscall.RUSAGE_CHILDREN) - cpu0
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/capture")
	b.ReportMetric(float64(ru.Maxrss)/1024, "chromium-peak-MB")
	b.ReportMetric(float64(peakHeap)/(1<<20), "go-heap-MB")
}
