package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

// writeReplay writes n certstream messages; every scamEvery-th names a distinct printer
// helpline domain, the others ordinary hosts. It returns the file and the scam names.
func writeReplay(t *testing.T, n, scamEvery int) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "replay.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	var scams []string
	for i := range n {
		name := fmt.Sprintf("host-%d.example-shop.org", i)
		if i%scamEvery == 0 {
			name = fmt.Sprintf("hp-printer-help-desk-%d.online", i)
			scams = append(scams, name)
		}
		fmt.Fprintf(w, `{"message_type":"certificate_update","data":{"cert_index":%d,"cert_link":"","leaf_cert":{"all_domains":[%q,"www.%s"],"fingerprint":"FP:%d","issuer":{"O":"Let's Encrypt","CN":"R13"},"not_before":1764633600,"not_after":1772409600},"seen":1764633700.5,"source":{"name":"Test log","url":"https://log.test/"},"update_type":"PrecertLogEntry"}}`+"\n",
			i, name, name, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path, scams
}

// teamWorld starts local DNS, RDAP (.online) and WHOIS servers and returns the flags that point
// the workers at them.
func teamWorld(t *testing.T) []string {
	t.Helper()
	dnsSrv := enrichtest.StartDNS(t)
	rdapSrv := enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) {
		// A registry's latency: a worker holds jobs while it waits, as in life, so the one
		// killed below dies holding some.
		time.Sleep(25 * time.Millisecond)
		name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		fmt.Fprint(w, enrichtest.RegistryDomain(name, "", time.Now().UTC().Add(-48*time.Hour).Format(time.RFC3339)))
	})
	boot := filepath.Join(t.TempDir(), "dns.json")
	if err := os.WriteFile(boot, enrichtest.BootstrapFor(rdapSrv.URL, "online"), 0o644); err != nil {
		t.Fatal(err)
	}
	whoisSrv := enrichtest.StartWHOIS(t, func(q string) (string, bool) { return "No match\n", false })
	return []string{"--resolver", dnsSrv.Addr, "--rdap-bootstrap", boot, "--whois-server", whoisSrv.Addr, "--lookup-rate", "0",
		"--lookup-timeout", "2s", "--allow-host", rdapSrv.Listener.Addr().String(), "--allow-host", whoisSrv.Addr}
}

func startChild(t *testing.T, args ...string) (*exec.Cmd, *lockedBuilder) {
	t.Helper()
	cmd := newChild(args...)
	out := &lockedBuilder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, out
}

func jobCounts(s *store.SQL, kind string) (done, running, queued, failed int) {
	st, err := s.JobStats(context.Background(), time.Now())
	if err != nil {
		return
	}
	for _, k := range st {
		if k.Kind == kind {
			return k.Done, k.Running, k.Queued + k.Scheduled, k.Failed
		}
	}
	return
}

// A team on PostgreSQL: one ingest process and three workers, one killed with kill -9 while it
// holds jobs. Every flagged case is stored once, every job done once, and the killed worker's
// jobs are finished by the others.
func TestTeamOnPostgres(t *testing.T) {
	dsn := storetest.Schema(t)
	replay, scams := writeReplay(t, 200_000, 100)
	world := teamWorld(t)
	ingest, ingestOut := startChild(t, "watch", "--source", replay, "--db", dsn, "--enrich=false", "--site-check=false", "--status-every", "0")
	var workers []*exec.Cmd
	var outs []*lockedBuilder
	for range 3 {
		w, out := startChild(t, append([]string{"work", "--db", dsn, "--kinds", "enrich", "--enrich-workers", "4"}, world...)...)
		workers, outs = append(workers, w), append(outs, out)
	}
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(120 * time.Second)
	for d, _, _, _ := jobCounts(s, store.KindEnrich); d < 300; d, _, _, _ = jobCounts(s, store.KindEnrich) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for 300 enrichments: ingest:\n%s\nworker:\n%s", tail(ingestOut.String()), tail(outs[0].String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	victim := workers[1]
	var held []int64
	waitFor(t, "the worker to hold jobs", 60*time.Second, func() bool {
		held = heldJobs(t, s, victim.Process.Pid)
		return len(held) > 0
	})
	victim.Process.Signal(syscall.SIGKILL)
	victim.Wait()
	if err := ingest.Wait(); err != nil {
		t.Fatalf("ingest: %v\n%s", err, ingestOut)
	}
	waitFor(t, "every enrichment", 120*time.Second, func() bool {
		d, r, q, f := jobCounts(s, store.KindEnrich)
		return d+f == len(scams) && r == 0 && q == 0
	})
	for i, w := range workers {
		if i != 1 {
			w.Process.Signal(syscall.SIGTERM)
			if err := w.Wait(); err != nil {
				t.Errorf("worker %d: %v\n%s", i, err, outs[i])
			}
		}
	}
	cases, err := s.Cases(context.Background(), store.Query{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]int{}
	for _, c := range cases {
		byName[c.Registrable]++
		if c.Enrichment == nil || c.Enrichment.Registration.Source != "rdap" {
			t.Errorf("%s not enriched: %+v", c.Registrable, c.Enrichment)
		}
		if len(c.Names) != 2 || c.CertCount != 1 {
			t.Errorf("%s: %d names, %d certificates", c.Registrable, len(c.Names), c.CertCount)
		}
	}
	for _, n := range scams {
		if byName[n] != 1 {
			t.Fatalf("case %s stored %d times", n, byName[n])
		}
	}
	if len(cases) != len(scams) {
		t.Errorf("%d cases, want %d", len(cases), len(scams))
	}
	done, _, _, failed := jobCounts(s, store.KindEnrich)
	if done != len(scams) || failed != 0 {
		t.Errorf("enrich jobs: %d done, %d failed, want %d done", done, failed, len(scams))
	}
	// The jobs the killed worker held a moment before its death are done (by it, when it
	// finished them in that moment, or by another), and those it held at its death were taken
	// back and done on a further attempt by the others.
	for _, id := range held {
		var state string
		if err := s.DB().QueryRowContext(context.Background(), `SELECT state FROM jobs WHERE id = $1`, id).Scan(&state); err != nil {
			t.Fatal(err)
		}
		if state != "done" {
			t.Errorf("job %d of the killed worker: %s", id, state)
		}
	}
	rows, err := s.DB().QueryContext(context.Background(), `SELECT id, state, attempts FROM jobs WHERE last_error LIKE 'the worker holding it stopped%'`)
	if err != nil {
		t.Fatal(err)
	}
	takenOver := 0
	for rows.Next() {
		var id int64
		var state string
		var attempts int
		if err := rows.Scan(&id, &state, &attempts); err != nil {
			t.Fatal(err)
		}
		takenOver++
		if state != "done" || attempts < 2 {
			t.Errorf("job %d, taken back from the killed worker: %s after %d attempts", id, state, attempts)
		}
	}
	rows.Close()
	if takenOver == 0 {
		t.Error("the killed worker held no job when it died: the test shows nothing")
	}
	// An analyst on another machine: a label, then findings and the report from the same URL.
	run := func(args ...string) string {
		t.Helper()
		out, err := newChild(args...).CombinedOutput()
		if err != nil {
			t.Fatalf("helpwatch %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("label", "--db", dsn, "--by", "analyst", scams[0], "benign", "--note", "a partner's site")
	if out := run("findings", "--db", dsn, "--label", "benign", "--format", "csv"); !strings.Contains(out, scams[0]) || strings.Count(out, "\n") != 2 {
		t.Errorf("findings --label benign on PostgreSQL:\n%s", out)
	}
	reportFile := filepath.Join(t.TempDir(), "report.json")
	run("report", "--db", dsn, "--since", "87600h", "--format", "json", "--out", reportFile)
	if data, err := os.ReadFile(reportFile); err != nil || !strings.Contains(string(data), scams[1]) {
		t.Errorf("report from PostgreSQL: %v\n%.500s", err, data)
	}
	t.Logf("killed a worker holding %d jobs (%d taken back from it); %d cases enriched", len(held), takenOver, done)
}

// heldJobs lists the jobs the worker process pid holds now.
func heldJobs(t *testing.T, s *store.SQL, pid int) []int64 {
	t.Helper()
	rows, err := s.DB().QueryContext(context.Background(), `SELECT j.id FROM jobs j JOIN workers w ON w.id = j.owner
		WHERE w.pid = $1 AND j.state = 'running'`, pid)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	return ids
}

func tail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

// Two ingest processes share the CT logs through the database: each log is read by one of them
// at a time, and when the one reading is killed the other takes over at the stored position.
func TestWatchProcessesShareCTLogsOnPostgres(t *testing.T) {
	dsn := storetest.Schema(t)
	const n = 1500
	release := make(chan struct{})
	list, _, _ := ctLogs(t, n, release)
	args := []string{"watch", "--log-list", list, "--allow-host", "127.0.0.1", "--db", dsn, "--from-index", "0", "--enrich=false",
		"--site-check=false", "--log-poll", "50ms", "--log-parallel", "1", "--log-takeover", "100ms", "--status-every", "0"}
	first, firstOut := startChild(t, args...)
	waitFor(t, "the first process to read both logs", 60*time.Second, func() bool {
		ps := positionsIn(t, dsn)
		return len(ps) == 2 && ps["Test E2Erfc6962"].Next >= 200 && ps["Test E2Estaticctapi"].Next >= 200
	})
	second, secondOut := startChild(t, args...)
	waitFor(t, "the second process to stand by", 30*time.Second, func() bool {
		return strings.Count(secondOut.String(), "another watch process follows this CT log") == 2
	})
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	close(release)
	waitFor(t, "the second process to read both logs to the end", 60*time.Second, func() bool {
		ps := positionsIn(t, dsn)
		return ps["Test E2Erfc6962"].Next == n && ps["Test E2Estaticctapi"].Next == n
	})
	second.Process.Signal(syscall.SIGTERM)
	if err := second.Wait(); err != nil {
		t.Fatalf("second watch: %v\n%s", err, secondOut)
	}
	if strings.Count(secondOut.String(), "resuming a CT log") < 2 {
		t.Errorf("the second process did not take the logs over:\n%s", secondOut)
	}
	for name, p := range positionsIn(t, dsn) {
		if p.Read != n {
			t.Errorf("log %s: %d entries read in all, want %d (each once)", name, p.Read, n)
		}
	}
	_ = firstOut
}
