package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog/ctlogtest"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// ctLogs starts a static-ct-api and an RFC 6962 log with n entries each (every 25th a scam
// name) and writes their log list. Entries from index 1000 on are held back until release is
// closed, so that a watch is still reading when it is killed.
func ctLogs(t *testing.T, n int, release chan struct{}) (list string, logs []*ctlogtest.Log, scams []string) {
	t.Helper()
	ca := ctlogtest.NewCA()
	for _, kind := range []string{ctlog.KindStatic, ctlog.KindRFC6962} {
		l := ctlogtest.NewLog(t, kind, "E2E"+strings.ReplaceAll(kind, "-", ""))
		for i := range n {
			name := fmt.Sprintf("plain-%s-%d.example.org", kind, i)
			if i%25 == 0 {
				name = fmt.Sprintf("hp-printer-help-desk-%s-%d.online", strings.ReplaceAll(kind, "-", ""), i)
				scams = append(scams, name)
			}
			l.Add(ca.PrecertEntry(name))
		}
		l.Publish()
		l.MaxEntries = 32
		l.Hook = func(w http.ResponseWriter, r *http.Request) bool {
			start, _ := strconv.Atoi(r.URL.Query().Get("start"))
			if _, tile, ok := strings.Cut(r.URL.Path, "/tile/data/"); ok {
				tile, _, _ = strings.Cut(tile, ".p/")
				n, _ := strconv.Atoi(tile)
				start = n * 256
			}
			if start >= 1000 {
				select {
				case <-release:
				case <-r.Context().Done():
					return true
				}
			} else if !ctlogtest.IsHead(r) {
				// A distant log: reading up to the hold takes a few flushes, so the kill can
				// land between a batch's entries and its position.
				delay := 40 * time.Millisecond
				if strings.Contains(r.URL.Path, "/tile/data/") {
					delay = 250 * time.Millisecond
				}
				time.Sleep(delay)
			}
			return false
		}
		logs = append(logs, l)
	}
	list = filepath.Join(t.TempDir(), "log_list.json")
	if err := ctlogtest.WriteList(list, logs...); err != nil {
		t.Fatal(err)
	}
	return list, logs, scams
}

// positionsIn reads the stored positions of the database a child process writes (t unused:
// benchmarks call it too).
func positionsIn(_ *testing.T, db string) map[string]watcher.LogPosition {
	s, err := store.Open(context.Background(), db)
	if err != nil {
		return nil
	}
	defer s.Close()
	ps, err := s.LogPositions(context.Background())
	if err != nil {
		return nil
	}
	out := map[string]watcher.LogPosition{}
	for _, p := range ps {
		out[p.Name] = p
	}
	return out
}

func TestWatchFollowsCTLogsThroughKill9(t *testing.T) {
	const n = 1500
	release := make(chan struct{})
	list, _, scams := ctLogs(t, n, release)
	db := filepath.Join(t.TempDir(), "h.db")
	args := []string{"--log-list", list, "--allow-host", "127.0.0.1", "--db", db, "--from-index", "0",
		"--log-poll", "50ms", "--log-parallel", "1", "--status-every", "0"}
	cmd, stderr := childWatch(t, args...)
	readSome := func() bool {
		ps := positionsIn(t, db)
		if len(ps) < 2 {
			return false
		}
		for _, p := range ps {
			if p.Next < 200 {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(60 * time.Second)
	for !readSome() {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("timed out waiting for both logs partly read: %v\n%s", positionsIn(t, db), stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	close(release)
	at := positionsIn(t, db)
	for name, p := range at {
		t.Logf("killed with %s at %d", name, p.Next)
		if p.Next >= n {
			t.Fatalf("log %s was read to the end before the kill; the test needs slower logs", name)
		}
	}
	// Restarted, it carries on from the stored positions.
	cmd, stderr2 := childWatch(t, args...)
	waitFor(t, "both logs read to the end", 60*time.Second, func() bool {
		ps := positionsIn(t, db)
		done := len(ps) == 2
		for _, p := range ps {
			done = done && p.Next == n
		}
		return done
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch after SIGTERM: %v\n%s", err, stderr2)
	}
	if !strings.Contains(stderr2.String(), "resuming a CT log") {
		t.Errorf("the restart did not resume:\n%s", stderr2)
	}
	for name, p := range positionsIn(t, db) {
		// Read counts every entry once per commit of its position: more means entries were
		// read twice, less that some were skipped.
		if p.Read != n {
			t.Errorf("log %s: %d entries read in all, want %d (killed at %d)", name, p.Read, n, at[name].Next)
		}
	}
	s, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, name := range scams {
		c, ok, err := s.Case(context.Background(), name)
		if err != nil || !ok {
			t.Errorf("scam %s not stored (%v)", name, err)
			continue
		}
		if c.CertCount != 1 || c.Cert.Serial == "" || c.Cert.LogURL == "" || c.Cert.Index < 0 {
			t.Errorf("%s counted %d certificates (want 1), certificate %+v", name, c.CertCount, c.Cert)
		}
	}
}

func TestLogsCommand(t *testing.T) {
	ca := ctlogtest.NewCA()
	a := ctlogtest.NewLog(t, ctlog.KindStatic, "Shown")
	for i := range 40 {
		a.Add(ca.CertEntry(fmt.Sprintf("n%d.example", i)))
	}
	a.Publish()
	list := filepath.Join(t.TempDir(), "list.json")
	if err := ctlogtest.WriteList(list, a); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "h.db")
	s, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	root := a.RootAt(30)
	_, err = s.Save(context.Background(), []store.Sighting{{Position: &watcher.LogPosition{LogID: a.ListLog().ID, Name: "Test Shown",
		URL: a.URL(), TreeSize: 30, RootHash: root[:], Next: 30, Read: 30}}}, store.Counts{})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "", "logs", "--log-list", list, "--allow-host", "127.0.0.1", "--db", db, "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rows []struct {
		Name       string `json:"name"`
		Followed   bool   `json:"followed"`
		TreeSize   int64  `json:"tree_size"`
		Next       int64  `json:"next_index"`
		LagEntries *int64 `json:"lag_entries"`
		LastError  string `json:"last_error"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("%v: %s", err, out)
	}
	if r := rows[0]; !r.Followed || r.TreeSize != 40 || r.Next != 30 || r.LagEntries == nil || *r.LagEntries != 10 || r.LastError != "" {
		t.Errorf("logs said %+v", r)
	}
	// Table, offline: the list and the stored position, no request.
	before := a.Count("checkpoint")
	out, _, code = runCLI(t, "", "logs", "--log-list", list, "--db", db, "--offline")
	if code != 0 || !strings.Contains(out, "Test Shown") || !strings.Contains(out, " 30 ") || a.Count("checkpoint") != before {
		t.Errorf("offline table (exit %d):\n%s", code, out)
	}
	_, errOut, code = runCLI(t, "", "logs", "--logs", "Argn2026h2", "--offline")
	if code != 2 || !strings.Contains(errOut, "Argn2026h2") || !strings.Contains(errOut, "Argon2026h2") {
		t.Errorf("unknown log name: exit %d: %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "", "watch", "--log-list", filepath.Join(t.TempDir(), "nope.json"), "--db", filepath.Join(t.TempDir(), "x.db"))
	if code == 0 || !strings.Contains(errOut, "nope.json") {
		t.Errorf("missing log list: exit %d: %s", code, errOut)
	}
	_, errOut, code = runCLI(t, "", "record", "--source", "ct", "--out", filepath.Join(t.TempDir(), "r.jsonl"))
	if code != 2 || !strings.Contains(errOut, "certstream") {
		t.Errorf("record from ct: exit %d: %s", code, errOut)
	}
}
