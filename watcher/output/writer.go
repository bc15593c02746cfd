package output

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/helpwatch/helpwatch/rules"
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

// SafeCell neutralizes spreadsheet formulas: a cell an attacker controls must not start with
// =, +, - or @ (or a tab/CR that some spreadsheets strip before looking).
func SafeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
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

func (t *tableWriter) Write(r *rules.Result) error {
	if !t.header {
		fmt.Fprintf(t.w, "%-7s %5s  %-14s %-40s %s\n", "VERDICT", "SCORE", "BRAND", "DOMAIN", "WHY")
		t.header = true
	}
	why := ReasonSummary(r)
	if r.Error != "" {
		why = "error: " + r.Error
	}
	_, err := fmt.Fprintf(t.w, "%-7s %5d  %-14s %-40s %s\n", r.Verdict, r.Score, Printable(r.Brand), Printable(r.Domain), Printable(why))
	return err
}

func (t *tableWriter) Flush() error { return t.w.Flush() }

// Printable replaces control characters so that hostile input cannot drive the terminal.
func Printable(s string) string {
	clean := true
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == unicode.ReplacementChar {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}
