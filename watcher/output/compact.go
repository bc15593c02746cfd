package output

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/helpwatch/helpwatch/watcher"
)

// NewCompactCaseTable lists cases in rows of at most width columns (a terminal's): score,
// the points before the cap where there is room (what ranks cases that all score 100; in a
// narrow terminal a capped score reads "100+"), verdict, the domain (clipped
// with "…" when it must be), brand, site verdict, label, CT time, and the rules that scored, by
// name; the registrar and the details are in the wide table and in JSON. rescored widens the
// score and verdict columns for "old>new".
func NewCompactCaseTable(w io.Writer, width int, rescored bool) CaseWriter {
	t := &compactTable{w: bufio.NewWriterSize(w, 64<<10), widths: []int{5, 7, 0, 8, 11, 6}}
	if rescored {
		t.widths[0], t.widths[1] = 7, 13
	}
	// The CT time only where there is room for it: the list is newest first anyway.
	t.seen = width >= 100
	if t.seen {
		t.widths = append(t.widths, 11)
		t.points = true
		t.widths = slices.Insert(t.widths, 1, 4)
	}
	t.domain = slices.Index(t.widths, 0)
	fixed := len(t.widths)
	for _, n := range t.widths {
		fixed += n
	}
	// The domain comes first: up to 40 columns, and at least 24 even when the reasons then
	// get none.
	rest := width - fixed
	t.widths[t.domain] = min(40, max(24, rest-9))
	t.why = max(rest-t.widths[t.domain], 0)
	return t
}

type compactTable struct {
	w      *bufio.Writer
	widths []int // score, [points,] verdict, domain, brand, site, label[, seen]
	seen   bool
	points bool // a column of the points before the cap
	domain int  // the domain's column
	why    int
	header bool
}

func (t *compactTable) row(cells ...string) {
	var b strings.Builder
	for i, n := range t.widths {
		c := clip(cells[i], n)
		if i == 0 || (t.points && i == 1) {
			fmt.Fprintf(&b, "%*s ", n, c)
			continue
		}
		fmt.Fprintf(&b, "%-*s ", n, c)
	}
	if t.why >= 8 {
		b.WriteString(clip(cells[len(cells)-1], t.why))
	}
	t.w.WriteString(strings.TrimRight(b.String(), " ") + "\n")
}

func (t *compactTable) writeHeader() {
	if !t.header {
		head := []string{"SCORE", "VERDICT", "DOMAIN", "BRAND", "SITE", "LABEL", "CT SEEN UTC", "WHY (--wide: details)"}
		if t.points {
			head = slices.Insert(head, 1, "PTS")
		}
		t.row(head...)
		t.header = true
	}
}

func (t *compactTable) Write(c *watcher.Case) error {
	t.writeHeader()
	verdict, score := string(c.Score.Verdict), strconv.Itoa(c.Score.Score)
	r := &c.Score
	if c.Rescored != nil {
		r = c.Rescored
		verdict, score = verdict+">"+string(r.Verdict), score+">"+strconv.Itoa(r.Score)
	}
	rulesHit := make([]string, 0, len(r.Reasons))
	for _, re := range r.Reasons {
		rulesHit = append(rulesHit, re.Rule)
	}
	f := FactsOf(c)
	if !t.points && r.Points() > r.Score && c.Rescored == nil {
		score += "+"
	}
	cells := []string{score, verdict, Printable(c.Registrable), Printable(c.Brand), f.Site, f.Label}
	if t.points {
		cells = slices.Insert(cells, 1, strconv.Itoa(r.Points()))
	}
	if t.seen {
		cells = append(cells, c.CTSeen.UTC().Format("01-02 15:04"))
	}
	t.row(append(cells, Printable(strings.Join(rulesHit, ",")))...)
	return nil
}

func (t *compactTable) Flush() error {
	t.writeHeader()
	return t.w.Flush()
}
