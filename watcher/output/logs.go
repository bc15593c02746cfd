package output

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

// WriteLogs prints CT log statuses (`helpwatch logs`) as a table or as JSON. A Next of -1
// means no position is stored for the log.
func WriteLogs(w io.Writer, format string, logs []watcher.LogStatus, now time.Time) error {
	if format == "json" {
		type row struct {
			watcher.LogStatus
			LagEntries *int64   `json:"lag_entries,omitempty"`
			HeadAge    *float64 `json:"head_age_s,omitempty"`
		}
		rows := make([]row, len(logs))
		for i, l := range logs {
			rows[i].LogStatus = l
			if l.Next >= 0 && l.TreeSize > 0 {
				n := l.LagEntries()
				rows[i].LagEntries = &n
			}
			if !l.TreeTime.IsZero() {
				a := now.Sub(l.TreeTime).Seconds()
				rows[i].HeadAge = &a
			}
		}
		enc := json.NewEncoder(SafeJSON(w))
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	bw := bufio.NewWriter(w)
	const row = "%-28s %-13s %-9s %-6s %12s %12s %12s %-9s %s\n"
	fmt.Fprintf(bw, row, "LOG", "KIND", "STATE", "FOLLOW", "TREE SIZE", "NEXT", "LAG", "HEAD AGE", "WHY")
	for _, l := range logs {
		follow, size, next, lag, age := "no", "-", "-", "-", "-"
		if l.Followed {
			follow = "yes"
		}
		if l.TreeSize > 0 || !l.TreeTime.IsZero() {
			size = strconv.FormatInt(l.TreeSize, 10)
		}
		if l.Next >= 0 {
			next = strconv.FormatInt(l.Next, 10)
			if l.TreeSize > 0 {
				lag = strconv.FormatInt(l.LagEntries(), 10)
			}
		}
		if !l.TreeTime.IsZero() {
			age = now.Sub(l.TreeTime).Round(time.Second).String()
		} else if l.Followed && l.LastError != "" {
			age = "no head"
		}
		why := l.Why
		if l.LastError != "" {
			why += "; error: " + l.LastError
		}
		fmt.Fprintf(bw, row, Printable(clip(l.Name, 28)), l.Kind, Printable(l.State), follow, size, next, lag, age, Printable(why))
	}
	return bw.Flush()
}
