package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

// Keyset pages of the queue, in both orders and with ties in the order's key, cover every
// case once, in order; a filter and a campaign narrow it; a cursor not made here is refused.
func TestQueuePagesCoverEveryCaseOnce(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, storetest.Where(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	const n = 103
	for i := 0; i < n; i++ {
		verdict := []string{"alert", "watch", "ignore"}[i%3]
		// Every three cases share a CT time and every five a score: ties in both keys.
		if _, err := db.DB().ExecContext(ctx, `INSERT INTO cases (registrable, brand, brand_key, score, points, verdict, ct_seen, first_seen, last_seen)
			VALUES ($1, 'HP', 'hp', $2, $2, $3, $4, $4, $4)`, fmt.Sprintf("c%03d.com", i), (i/5)*3%100, verdict, t0.Add(time.Duration(i/3)*time.Minute).UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	var campaignCase int64
	if err := db.DB().QueryRowContext(ctx, `SELECT id FROM cases WHERE registrable = 'c042.com'`).Scan(&campaignCase); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DB().ExecContext(ctx, `INSERT INTO site_links (kind, value, name, case_id, first_seen) VALUES ('phone', '+18885550100', 'c042.com', $1, 0)`, campaignCase); err != nil {
		t.Fatal(err)
	}
	for _, q := range []QueueQuery{{}, {ByScore: true}, {Verdict: "alert"}, {ByScore: true, Verdict: "watch"}} {
		seen := map[string]bool{}
		var prev *QueueRow
		pages := 0
		for {
			q.Limit = 7
			page, err := db.Queue(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for i := range page.Rows {
				r := page.Rows[i]
				if seen[r.Registrable] {
					t.Fatalf("%+v: %s twice", q, r.Registrable)
				}
				seen[r.Registrable] = true
				if q.Verdict != "" && r.Verdict != q.Verdict {
					t.Errorf("%+v: %s is %s", q, r.Registrable, r.Verdict)
				}
				if prev != nil {
					before := prev.CTSeen.After(r.CTSeen) || prev.CTSeen.Equal(r.CTSeen) && prev.ID > r.ID
					if q.ByScore {
						before = prev.Points > r.Points || prev.Points == r.Points && prev.ID > r.ID
					}
					if !before {
						t.Errorf("%+v: %s before %s", q, prev.Registrable, r.Registrable)
					}
				}
				prev = &r
			}
			if page.Next == "" {
				break
			}
			q.After = page.Next
		}
		want := n
		if q.Verdict != "" {
			want = (n + 2) / 3
			if q.Verdict == "watch" {
				want = (n + 1) / 3
			}
		}
		if len(seen) != want || pages != (want+6)/7 {
			t.Errorf("%+v: %d cases in %d pages, want %d", q, len(seen), pages, want)
		}
	}
	page, err := db.Queue(ctx, QueueQuery{Campaign: "phone:+18885550100"})
	if err != nil || len(page.Rows) != 1 || page.Rows[0].Registrable != "c042.com" {
		t.Errorf("campaign: %+v %v", page.Rows, err)
	}
	if _, err := db.Queue(ctx, QueueQuery{After: "1; DROP TABLE cases"}); err == nil {
		t.Error("a forged cursor was accepted")
	}
}
