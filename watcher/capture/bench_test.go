package capture

import (
	"context"
	"os"
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

// BenchmarkCapture is a capture of a cloaking site with both profiles: two pages loaded in
// their own browser contexts and screenshotted, bands drawn, the hosting network looked up.
// Captures share one browser (site.Renderer), so the first capture, which starts it, is
// measured apart ("cold"); the others are the steady state. It reports the CPU of helpwatch
// and of Chromium's processes together, the Chromium tree's proportional memory at its peak
// during the steady captures and at rest between them (the difference is what a capture
// adds), and the Go heap's peak.
func BenchmarkCapture(b *testing.B) {
	testkit.NeedBrowser(b)
	srv := cloakingSite(b)
	boot, _ := capturetest.HostingRDAP(b)
	guard := loopbackGuard(b)
	// HELPWATCH_BROWSER names another browser binary to compare (the full chromium, say).
	renderer := &site.Renderer{Timeout: 60 * time.Second, Browser: os.Getenv("HELPWATCH_BROWSER")}
	defer renderer.Close()
	c := &Capturer{Rules: testkit.DefaultRules(b), Fetcher: &site.Fetcher{Guard: guard, Timeout: 5 * time.Second},
		Renderer: renderer, Hosting: &enrich.Hosting{Bootstraps: []string{boot}, Guard: guard}}
	name := srv.Listener.Addr().String()
	heap := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peakHeap uint64
	capture := func() {
		got, _ := c.Capture(context.Background(), name)
		if !got.Observed() {
			b.Fatalf("capture saw %s", got.Verdict)
		}
		metrics.Read(heap)
		peakHeap = max(peakHeap, heap[0].Value.Uint64())
	}
	tree := watchProcTree(20 * time.Millisecond)
	defer tree.finish()
	// CPU of helpwatch (less the sampler's own) and of the browser's processes.
	used := func() time.Duration {
		browser, sampler := tree.cpu()
		return cpuTime(syscall.RUSAGE_SELF) - sampler + browser
	}
	start := used()
	capture()
	cold := used() - start
	_, coldPeak := tree.memory()
	start = used()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		capture()
	}
	b.StopTimer()
	steady := used() - start
	rest, peak := tree.memory()
	b.ReportMetric(steady.Seconds()/float64(b.N), "cpu-s/capture")
	b.ReportMetric(cold.Seconds(), "cold-cpu-s")
	b.ReportMetric(float64(max(peak, coldPeak))/(1<<20), "chromium-peak-MB")
	b.ReportMetric(float64(rest)/(1<<20), "chromium-rest-MB")
	b.ReportMetric(float64(peakHeap)/(1<<20), "go-heap-MB")
}
