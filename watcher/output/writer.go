package output

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
)

// Formats lists the names accepted by NewWriter.
var Formats = []string{"jsonl", "table", "csv"}

// ResultWriter writes scored names in one format. Write may buffer; Flush must be called at
// the end (and is safe to call at any time, e.g. on a signal).
type ResultWriter interface {
	Write(r *rules.Result) error
	Flush() error
}

// NewWriter returns a writer for format ("jsonl", "table" or "csv").
func NewWriter(w io.Writer, format string) (ResultWriter, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	switch format {
	case "jsonl", "json":
		return &jsonlWriter{w: bw}, nil
	case "table":
		return &tableWriter{w: bw}, nil
	case "csv":
		cw := csv.NewWriter(bw)
		if err := cw.Write([]string{"domain", "registrable", "score", "verdict", "brand", "reasons", "error", "rules_version"}); err != nil {
			return nil, err
		}
		return &csvWriter{bw: bw, w: cw}, nil
	}
	return nil, fmt.Errorf("unknown format %q (use %s)", format, strings.Join(Formats, ", "))
}

type jsonlWriter struct {
	w   *bufio.Writer
	buf []byte
}

func (j *jsonlWriter) Write(r *rules.Result) error {
	j.buf = append(AppendJSON(j.buf[:0], r), '\n')
	_, err := j.w.Write(j.buf)
	return err
}

func (j *jsonlWriter) Flush() error { return j.w.Flush() }

type csvWriter struct {
	bw *bufio.Writer
	w  *csv.Writer
}

func (c *csvWriter) Write(r *rules.Result) error {
	return c.w.Write([]string{SafeCell(r.Domain), SafeCell(r.Registrable), strconv.Itoa(r.Score),
		string(r.Verdict), SafeCell(r.Brand), SafeCell(ReasonSummary(r)), SafeCell(r.Error), r.RulesVersion})
}

func (c *csvWriter) Flush() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// SafeCell makes an outside string safe for a spreadsheet cell: unsafe characters are replaced
// as Printable does (a CR or LF would forge rows in tools that split lines first), and a cell
// that a spreadsheet would run as a formula (starting with =, +, -, @, a tab or CR, or their
// fullwidth forms, which some spreadsheets fold to ASCII) gets a leading apostrophe.
func SafeCell(s string) string {
	s = Printable(s)
	if s == "" {
		return s
	}
	r, _ := utf8.DecodeRuneInString(s)
	switch r {
	case '=', '+', '-', '@', '\t', '\r', '\uff1d', '\uff0b', '\uff0d', '\uff20':
		return "'" + s
	}
	return s
}

// ReasonSummary is the reasons on one line: "brand-token +30; keyword:helpline +30".
func ReasonSummary(r *rules.Result) string {
	parts := make([]string, 0, len(r.Reasons))
	for _, re := range r.Reasons {
		parts = append(parts, fmt.Sprintf("%s %+d: %s", re.Rule, re.Points, re.Detail))
	}
	return strings.Join(parts, "; ")
}

type tableWriter struct {
	w      *bufio.Writer
	header bool
}

func (t *tableWriter) writeHeader() {
	if !t.header {
		fmt.Fprintf(t.w, "%-7s %5s  %-14s %-40s %s\n", "VERDICT", "SCORE", "BRAND", "DOMAIN", "WHY")
		t.header = true
	}
}

func (t *tableWriter) Write(r *rules.Result) error {
	t.writeHeader()
	why := ReasonSummary(r)
	if r.Error != "" {
		why = "error: " + r.Error
	}
	_, err := fmt.Fprintf(t.w, "%-7s %5d  %-14s %-40s %s\n", r.Verdict, r.Score, Printable(r.Brand), Printable(r.Domain), Printable(why))
	return err
}

// Flush writes the header even when no row was written.
func (t *tableWriter) Flush() error {
	t.writeHeader()
	return t.w.Flush()
}

// Printable replaces what must not reach a terminal or a page as is (control characters,
// ESC included; line separators; bidirectional controls; invalid UTF-8) with '?', so hostile
// input cannot drive the terminal, forge lines or reorder what a reader sees.
func Printable(s string) string { return watcher.Clean(s, 0) }
