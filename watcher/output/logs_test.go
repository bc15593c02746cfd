package output

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

// A followed log that never gave a head is shown as such with its error, not with an empty
// age as if it were fine; JSON carries when it may be asked again and its unreadable entries.
func TestWriteLogsShowsLogsWithoutAHead(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	logs := []watcher.LogStatus{
		{Name: "Fine", Kind: "static-ct-api", State: "usable", Followed: true, TreeSize: 100, Next: 100, TreeTime: now.Add(-3 * time.Second)},
		{Name: "Throttled", Kind: "rfc6962", State: "usable", Followed: true, Next: -1, RetryAt: now.Add(10 * time.Minute), Malformed: 2,
			LastError: "https://ct.example/ct/v1/get-sth: HTTP 429 Too Many Requests; the log asks to wait 277h46m39s (Retry-After), asking again in 10m0s"},
	}
	var table bytes.Buffer
	if err := WriteLogs(&table, "table", logs, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(table.String(), "\n")
	if len(lines) < 3 || !strings.Contains(lines[1], "3s") || !strings.Contains(lines[2], "no head") || !strings.Contains(lines[2], "asks to wait") {
		t.Errorf("table:\n%s", table.String())
	}
	var js bytes.Buffer
	if err := WriteLogs(&js, "json", logs, now); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(js.Bytes(), &rows); err != nil {
		t.Fatal(err)
	}
	if rows[1]["retry_at"] != "2026-12-05T12:10:00Z" || rows[1]["malformed_entries"] != float64(2) || rows[0]["retry_at"] != nil {
		t.Errorf("json: %s", js.String())
	}
}
