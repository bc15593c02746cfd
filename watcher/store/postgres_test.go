package store

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

func TestRedactHidesEveryPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://helpwatch:s3cret@db.example.org:5432/helpwatch?sslmode=verify-full",
		"postgresql://db.example.org/helpwatch?password=s3cret&sslmode=require",
		"postgres://u:s3cret@db.example.org/h?password=s3cret",
		"postgres://u:%73%33cret@db.example.org/h",
		"postgres://u:s3cret@db.example.org:bad port/h",
	} {
		got := Redact(dsn)
		if strings.Contains(got, "s3cret") || strings.Contains(got, "%73%33cret") {
			t.Errorf("Redact(%q) = %q", dsn, got)
		}
	}
	if got := Redact("postgres://u@db.example.org/h?sslmode=disable"); got != "postgres://u@db.example.org/h?sslmode=disable" {
		t.Errorf("a URL without a password changed: %q", got)
	}
}

// The password comes from the password file when the URL has none, and no error says it.
func TestPasswordFromPassFileIsUsedAndNeverPrinted(t *testing.T) {
	pass := filepath.Join(t.TempDir(), "pgpass")
	if err := os.WriteFile(pass, []byte("127.0.0.1:1:helpwatch:analyst:s3cret-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGPASSFILE", pass)
	dsn := "postgres://analyst@127.0.0.1:1/helpwatch?sslmode=disable&connect_timeout=2"
	cfg, err := pgxConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Password != "s3cret-from-file" {
		t.Errorf("password %q, want the password file's", cfg.Password)
	}
	_, err = Open(context.Background(), dsn)
	if err == nil {
		t.Fatal("opened a database on port 1")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows the password: %v", err)
	}
	_, err = Open(context.Background(), "postgres://analyst:s3cret-in-url@127.0.0.1:1/helpwatch?sslmode=disable&connect_timeout=2")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("want an error naming the server without the password, got %v", err)
	}
}

// Processes starting together on a new database: one migrates, the others wait for it and
// find the schema current.
func TestOpenTogetherMigratesOnce(t *testing.T) {
	if !onPostgres() {
		t.Skip("PostgreSQL only: SQLite has one process per file")
	}
	// A fresh schema: storetest.Schema makes one that nothing has opened yet.
	dsn := storetest.Schema(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := Open(context.Background(), dsn)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var versions, max int
	if err := s.db.QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&versions, &max); err != nil {
		t.Fatal(err)
	}
	if versions != len(postgresMigrations) || max != len(postgresMigrations) {
		t.Errorf("%d migrations recorded up to %d, want each of %d once", versions, max, len(postgresMigrations))
	}
}

// A CT log is one process's at a time: a second store cannot take it while the first holds
// it, and takes it once the first is gone.
func TestLogLeaseHasOneHolder(t *testing.T) {
	ctx := context.Background()
	first, where := openTemp(t)
	ok, _, err := first.TryLog(ctx, "log-a")
	if err != nil || !ok {
		t.Fatalf("first take: %v %v", ok, err)
	}
	if !onPostgres() {
		return // SQLite: one process per file, every log its own
	}
	second, err := Open(ctx, where)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if ok, _, err := second.TryLog(ctx, "log-a"); err != nil || ok {
		t.Fatalf("a second holder: %v %v", ok, err)
	}
	if ok, _, err := second.TryLog(ctx, "log-b"); err != nil || !ok {
		t.Fatalf("another log: %v %v", ok, err)
	}
	if ok, _, err := first.TryLog(ctx, "log-a"); err != nil || !ok {
		t.Fatalf("taking a held log again: %v %v", ok, err)
	}
	first.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, _, err := second.TryLog(ctx, "log-a")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the log was not free after its holder closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TLS is what the URL asks for: with sslmode=require the session is encrypted, or, on a server
// without TLS, opening fails saying so; with sslmode=disable it is plain.
func TestTLSAsTheURLAsks(t *testing.T) {
	if !onPostgres() {
		t.Skip("PostgreSQL only")
	}
	base := storetest.Schema(t)
	withMode := func(mode string) string {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("sslmode", mode)
		u.RawQuery = q.Encode()
		return u.String()
	}
	encrypted := func(s *SQL) bool {
		var on bool
		if err := s.db.QueryRow(`SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&on); err != nil {
			t.Fatal(err)
		}
		return on
	}
	plain, err := Open(context.Background(), withMode("disable"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if encrypted(plain) {
		t.Error("sslmode=disable gave a TLS session")
	}
	s, err := Open(context.Background(), withMode("require"))
	if err != nil {
		if !strings.Contains(strings.ToLower(err.Error()), "tls") && !strings.Contains(strings.ToLower(err.Error()), "ssl") {
			t.Errorf("a server without TLS, and the error does not say so: %v", err)
		}
		return
	}
	defer s.Close()
	if !encrypted(s) {
		t.Error("sslmode=require gave a plain session")
	}
}

// A watch saving batches (it locks a case, then queues its jobs) and workers saving
// enrichments (they lock the case before their job row) race on the same cases without a
// deadlock: one lock order everywhere.
func TestWatchAndWorkersLockInOneOrder(t *testing.T) {
	if !onPostgres() {
		t.Skip("PostgreSQL only: SQLite has one writer")
	}
	ctx := context.Background()
	const cases = 12
	s := withCases(t, cases)
	register(t, s, "w1", os.Getpid())
	register(t, s, "w2", os.Getpid())
	errs := make(chan error, 3)
	var watchDone atomic.Bool
	var saved atomic.Int64
	go func() {
		defer watchDone.Store(true)
		for round := range 60 {
			// A new name of each case every round: each queues an enrichment again once the
			// last one is done, so workers and the watch meet on the same cases all along.
			var batch []Sighting
			for i := range cases {
				batch = append(batch, sighting(t, fmt.Sprintf("r%d.hp-printer-help-%d.com", round, i), time.Now(), fmt.Sprintf("r%d-%d", round, i)))
			}
			if _, err := s.Save(ctx, batch, Counts{}); err != nil {
				errs <- fmt.Errorf("watch, round %d: %w", round, err)
				return
			}
		}
		errs <- nil
	}()
	for _, w := range []string{"w1", "w2"} {
		go func() {
			for {
				last := watchDone.Load()
				claimed, err := s.ClaimJobs(ctx, w, []string{KindEnrich}, 2, time.Now(), time.Minute, false)
				if err != nil {
					errs <- fmt.Errorf("%s claiming: %w", w, err)
					return
				}
				for _, j := range claimed {
					if err := s.SaveEnrichment(ctx, &j, &watcher.Enrichment{}); err != nil {
						errs <- fmt.Errorf("%s saving the enrichment of %s: %w", w, j.Registrable, err)
						return
					}
					saved.Add(1)
				}
				if last && len(claimed) == 0 {
					break
				}
			}
			errs <- nil
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if saved.Load() < cases*2 {
		t.Errorf("only %d enrichments saved: the race was not run", saved.Load())
	}
}
