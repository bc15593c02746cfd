package console

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher/store"
)

// BenchmarkQueuePage1M serves queue pages over a SQLite store of 1,000,000 cases, through the
// whole console (session check, query, template), for the orders and filters an analyst uses,
// twenty pages deep each (keyset cursors). It reports the 95th percentile and the slowest page.
func BenchmarkQueuePage1M(b *testing.B) {
	const cases = 1_000_000
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(b.TempDir(), "queue.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	fillCases(b, db, cases)
	b.Logf("%d cases stored in %s", cases, time.Since(start).Round(time.Second))
	if err := db.AddUser(ctx, store.User{Name: "bench", Role: store.RoleViewer, PasswordHash: "x"}); err != nil {
		b.Fatal(err)
	}
	token := "bench-session-token"
	if err := db.CreateSession(ctx, tokenHash(token), "bench", time.Now().Add(time.Hour)); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer((&Server{Store: db}).Handler())
	defer srv.Close()
	queries := []string{"", "order=score", "verdict=alert", "brand=canon", "label=scam", "site=clone", "verdict=watch&brand=epson",
		"order=score&site=helpline", "takedown=none&verdict=alert"}
	get := func(u string) (time.Duration, string) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("%s: %d %s", u, resp.StatusCode, body)
		}
		next := ""
		if i := bytes.Index(body, []byte(`rel="next"`)); i > 0 {
			j := bytes.LastIndex(body[:i], []byte(`href="?`))
			next = string(body[j+len(`href="?`) : i-2])
		}
		return time.Since(t0), next
	}
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, q := range queries {
			next := q
			var slowest time.Duration
			for page := 0; page < 20; page++ {
				d, n := get(srv.URL + "/?" + html.UnescapeString(next))
				times = append(times, d)
				slowest = max(slowest, d)
				if n == "" {
					break
				}
				next = n
			}
			if i == 0 {
				b.Logf("%-30q slowest page %s", q, slowest.Round(time.Millisecond))
			}
		}
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)*95/100].Microseconds())/1000, "p95-ms/page")
	b.ReportMetric(float64(times[len(times)-1].Microseconds())/1000, "max-ms/page")
	b.ReportMetric(float64(len(times))/float64(b.N), "pages/op")
}

// fillCases stores n cases as a long watch would leave them: a year of CT times, brands,
// verdicts mostly ignore and watch, a few labelled and checked.
func fillCases(b *testing.B, db *store.SQL, n int) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	brands := []string{"HP", "Canon", "Epson", "Brother", "Lexmark", "Xerox"}
	verdicts := []string{"ignore", "ignore", "ignore", "watch", "watch", "alert"}
	sites := []string{"", "", "", "", "", "", "parked", "benign", "unreachable", "clone", "helpline"}
	labels := []string{"", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "scam", "benign"}
	t0 := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	tx, err := db.DB().BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO cases (registrable, brand, brand_key, score, points, verdict, ct_seen, first_seen, last_seen,
		site_verdict, label_kind, registrar) VALUES ($1, $2, $3, $4, $4, $5, $6, $6, $6, $7, $8, 'Example Registrar')`)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		brand := brands[rng.IntN(len(brands))]
		seen := t0 + int64(i)*31_536 + rng.Int64N(30_000) // a year, in CT order with jitter
		if _, err := stmt.ExecContext(ctx, fmt.Sprintf("%s-printer-%d.com", brand, i), brand, strings.ToLower(brand), rng.IntN(101),
			verdicts[rng.IntN(len(verdicts))], seen, sites[rng.IntN(len(sites))], labels[rng.IntN(len(labels))]); err != nil {
			b.Fatal(err)
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.DB().ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
}
