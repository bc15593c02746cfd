package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/jobs"
)

func withCases(t *testing.T, n int) *SQL {
	t.Helper()
	s, _ := openTemp(t)
	var batch []Sighting
	for i := 0; i < n; i++ {
		batch = append(batch, sighting(t, fmt.Sprintf("hp-printer-help-%d.com", i), time.Now(), fmt.Sprint(i)))
	}
	if _, err := s.Save(context.Background(), batch, Counts{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func register(t *testing.T, s *SQL, id string, pid int) {
	t.Helper()
	if err := s.RegisterWorker(context.Background(), Worker{ID: id, Host: HostName(), PID: pid, PIDStart: ProcessStart(pid), Started: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func TestLeasesHeartbeatsAndExpiry(t *testing.T) {
	ctx := context.Background()
	s := withCases(t, 3)
	me := os.Getpid()
	register(t, s, "a", me)
	register(t, s, "b", me)
	now := time.Now()
	jobs, err := s.ClaimJobs(ctx, "a", []string{KindEnrich}, 10, now, time.Minute, false)
	if err != nil || len(jobs) != 3 || jobs[0].Attempt != 1 || jobs[0].Registrable == "" {
		t.Fatalf("claim: %+v %v", jobs, err)
	}
	// Held: b gets nothing, not even later within the lease.
	if again, _ := s.ClaimJobs(ctx, "b", []string{KindEnrich}, 10, now.Add(50*time.Second), time.Minute, false); len(again) != 0 {
		t.Fatalf("held jobs handed out twice: %d", len(again))
	}
	// a's heartbeat moves the lease: still held after the first lease would have ended.
	if err := s.Heartbeat(ctx, "a", now.Add(50*time.Second), time.Minute); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.ClaimJobs(ctx, "b", []string{KindEnrich}, 10, now.Add(90*time.Second), time.Minute, false); len(again) != 0 {
		t.Fatalf("renewed jobs handed out: %d", len(again))
	}
	// No heartbeat for longer than the lease: b takes them, with the attempt counted.
	taken, err := s.ClaimJobs(ctx, "b", []string{KindEnrich}, 10, now.Add(3*time.Minute), time.Minute, false)
	if err != nil || len(taken) != 3 || taken[0].Attempt != 2 {
		t.Fatalf("after the lease: %+v %v", taken, err)
	}
	// a's late completion is refused and writes nothing; b's counts.
	late := jobs[0]
	if err := s.SaveEnrichment(ctx, &late, &watcher.Enrichment{Registrable: late.Registrable}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("late completion: %v", err)
	}
	if c := caseOf(t, s, late.Registrable); c.Enrichment != nil {
		t.Fatalf("a lost lease wrote the enrichment")
	}
	for i := range taken {
		if err := s.SaveEnrichment(ctx, &taken[i], &watcher.Enrichment{Registrable: taken[i].Registrable}); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := s.JobStats(ctx, time.Now())
	if st[0].Kind != KindEnrich || st[0].Done != 3 || st[0].Running != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A worker whose process has exited on this host gives its jobs up at once: the next claim
// takes them without waiting for the lease.
func TestJobsOfAnExitedProcessAreTakenAtOnce(t *testing.T) {
	ctx := context.Background()
	s := withCases(t, 2)
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("cannot start a process:", err)
	}
	pid := cmd.Process.Pid
	register(t, s, "doomed", pid)
	if jobs, err := s.ClaimJobs(ctx, "doomed", []string{KindEnrich}, 10, time.Now(), time.Hour, false); err != nil || len(jobs) != 2 {
		t.Fatalf("claim: %v %v", jobs, err)
	}
	register(t, s, "me", os.Getpid())
	if jobs, _ := s.ClaimJobs(ctx, "me", []string{KindEnrich}, 10, time.Now(), time.Hour, false); len(jobs) != 0 {
		t.Fatalf("a living worker's jobs were taken: %d", len(jobs))
	}
	cmd.Process.Kill()
	cmd.Wait()
	jobs, err := s.ClaimJobs(ctx, "me", []string{KindEnrich}, 10, time.Now(), time.Hour, false)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("after the process exited: %d jobs, %v", len(jobs), err)
	}
}

func TestRetryReleaseAndFailure(t *testing.T) {
	ctx := context.Background()
	s := withCases(t, 1)
	register(t, s, "w", os.Getpid())
	claim := func(at time.Time) *Job {
		jobs, err := s.ClaimJobs(ctx, "w", []string{KindEnrich}, 1, at, time.Minute, false)
		if err != nil || len(jobs) != 1 {
			t.Fatalf("claim at %s: %v %v", at, jobs, err)
		}
		return &jobs[0]
	}
	now := time.Now()
	job := claim(now)
	// Released (a stop): due at once, the attempt not counted.
	if err := s.ReleaseJob(ctx, job); err != nil {
		t.Fatal(err)
	}
	job = claim(time.Now())
	if job.Attempt != 1 {
		t.Fatalf("attempt after a release: %d", job.Attempt)
	}
	// A rate-limit wait: due later, not counted.
	if failed, err := s.RetryJob(ctx, job, now.Add(time.Hour), "paused", false); err != nil || failed {
		t.Fatal(failed, err)
	}
	if jobs, _ := s.ClaimJobs(ctx, "w", []string{KindEnrich}, 1, now.Add(30*time.Minute), time.Minute, false); len(jobs) != 0 {
		t.Fatal("claimed before its time")
	}
	job = claim(now.Add(time.Hour))
	if job.Attempt != 1 || job.LastError != "paused" {
		t.Fatalf("after a wait: %+v", job)
	}
	// Failures count, until the last attempt fails the job for good, reasons kept.
	at := now.Add(time.Hour)
	for i := 1; ; i++ {
		failed, err := s.RetryJob(ctx, job, at, fmt.Sprintf("nothing answered (%d)", i), true)
		if err != nil {
			t.Fatal(err)
		}
		if failed {
			if i != jobs.Enrich.MaxAttempts {
				t.Fatalf("failed after %d attempts, want %d", i, jobs.Enrich.MaxAttempts)
			}
			break
		}
		job = claim(at)
	}
	var errs, last string
	s.db.QueryRow(`SELECT errors, last_error FROM jobs WHERE id = $1 AND state = 'failed'`, job.ID).Scan(&errs, &last)
	if !strings.Contains(errs, "nothing answered (6)") || !strings.Contains(errs, "paused") || last != "nothing answered (6)" {
		t.Errorf("kept reasons %s / %s", errs, last)
	}
	st, _ := s.JobStats(ctx, time.Now())
	if st[0].Failed != 1 || st[0].Retried != 7 {
		t.Errorf("stats %+v", st[0])
	}
}

// The site check waits while its case's enrichment is pending, when asked to.
func TestSiteWaitsForEnrichment(t *testing.T) {
	ctx := context.Background()
	s := withCases(t, 1)
	register(t, s, "w", os.Getpid())
	if jobs, _ := s.ClaimJobs(ctx, "w", []string{KindSite}, 1, time.Now(), time.Minute, true); len(jobs) != 0 {
		t.Fatal("the site check ran before the enrichment")
	}
	if jobs, _ := s.ClaimJobs(ctx, "w", []string{KindSite}, 1, time.Now(), time.Minute, false); len(jobs) != 1 {
		t.Fatal("without waiting, the site check is due")
	}
}
