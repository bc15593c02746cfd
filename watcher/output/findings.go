package output

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

// FindingWriter writes stored findings in one format; Flush must be called at the end.
type FindingWriter interface {
	Write(f *watcher.Finding) error
	Flush() error
}

// NewFindingWriter returns a writer for format: "jsonl" (every field), "table" (aligned
// columns), "csv" (formula-safe) or "line" (one readable line per finding, for a terminal
// following a watch; it flushes every line).
func NewFindingWriter(w io.Writer, format string) (FindingWriter, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case "jsonl", "json":
		return &findingJSONL{w: bw, enc: json.NewEncoder(SafeJSON(bw))}, nil
	case "table":
		return &findingTable{w: bw}, nil
	case "line":
		return &findingLine{w: bw}, nil
	case "csv":
		cw := csv.NewWriter(bw)
		err := cw.Write([]string{"first_seen", "last_seen", "domain", "registrable", "brand", "score", "verdict", "reasons",
			"cert_count", "log", "cert_index", "issuer", "not_before", "fingerprint", "rules_version",
			"rescored_score", "rescored_verdict", "rescored_rules_version"})
		return &findingCSV{bw: bw, w: cw}, err
	}
	return nil, fmt.Errorf("unknown format %q (use jsonl, table, csv or line)", format)
}

// findingJSONL uses encoding/json (it escapes <, > and & and replaces invalid UTF-8) through
// SafeJSON (C1 and bidirectional controls), so a hostile value cannot break out of the line,
// out of an HTML page that embeds it, or reorder what a terminal shows.
type findingJSONL struct {
	w   *bufio.Writer
	enc *json.Encoder
}

func (j *findingJSONL) Write(f *watcher.Finding) error { return j.enc.Encode(f) }
func (j *findingJSONL) Flush() error                   { return j.w.Flush() }

type findingCSV struct {
	bw *bufio.Writer
	w  *csv.Writer
}

func timeCell(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (c *findingCSV) Write(f *watcher.Finding) error {
	var rs, rv, rver string
	if f.Rescored != nil {
		rs, rv, rver = strconv.Itoa(f.Rescored.Score), string(f.Rescored.Verdict), SafeCell(f.Rescored.RulesVersion)
	}
	return c.w.Write([]string{timeCell(f.FirstSeen), timeCell(f.LastSeen), SafeCell(f.Domain), SafeCell(f.Registrable),
		SafeCell(f.Brand), strconv.Itoa(f.Score), string(f.Verdict), SafeCell(ReasonSummary(&f.Result)),
		strconv.Itoa(f.CertCount), SafeCell(f.Cert.LogURL), strconv.FormatInt(f.Cert.Index, 10), SafeCell(f.Cert.Issuer),
		timeCell(f.Cert.NotBefore), SafeCell(f.Cert.Fingerprint), SafeCell(f.RulesVersion), rs, rv, rver})
}

func (c *findingCSV) Flush() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

type findingTable struct {
	w      *bufio.Writer
	header bool
}

func (t *findingTable) writeHeader() {
	if !t.header {
		fmt.Fprintf(t.w, "%-16s %-7s %5s  %-10s %-40s %5s  %s\n", "FIRST SEEN (UTC)", "VERDICT", "SCORE", "BRAND", "DOMAIN", "CERTS", "WHY")
		t.header = true
	}
}

func (t *findingTable) Write(f *watcher.Finding) error {
	t.writeHeader()
	verdict, score, why := string(f.Verdict), strconv.Itoa(f.Score), ReasonSummary(&f.Result)
	if r := f.Rescored; r != nil {
		// Rescored: the new verdict and score after the stored ones, and the new reasons.
		verdict, score, why = string(f.Verdict)+">"+string(r.Verdict), strconv.Itoa(f.Score)+">"+strconv.Itoa(r.Score), ReasonSummary(r)
	}
	_, err := fmt.Fprintf(t.w, "%-16s %-7s %5s  %-10s %-40s %5d  %s\n", f.FirstSeen.UTC().Format("2006-01-02 15:04"),
		verdict, score, Printable(f.Brand), Printable(f.Domain), f.CertCount, Printable(why))
	return err
}

// Flush writes the header even when no row was written: an empty table still says what it is.
func (t *findingTable) Flush() error {
	t.writeHeader()
	return t.w.Flush()
}

type findingLine struct{ w *bufio.Writer }

func (l *findingLine) Write(f *watcher.Finding) error {
	why := make([]string, 0, len(f.Reasons))
	for _, r := range f.Reasons {
		why = append(why, r.Detail)
	}
	cert := ""
	if f.Cert.LogURL != "" || f.Cert.Issuer != "" {
		cert = fmt.Sprintf("  [%s, %s #%d]", Printable(f.Cert.Issuer), Printable(f.Cert.LogURL), f.Cert.Index)
	}
	fmt.Fprintf(l.w, "%s  %-5s %3d  %-8s %s  %s%s\n", f.FirstSeen.Local().Format("15:04:05"), strings.ToUpper(string(f.Verdict)),
		f.Score, Printable(f.Brand), Printable(f.Domain), Printable(strings.Join(why, "; ")), cert)
	return l.w.Flush()
}

func (l *findingLine) Flush() error { return l.w.Flush() }
