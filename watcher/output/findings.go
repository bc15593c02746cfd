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

// CaseWriter writes stored cases in one format; Flush must be called at the end.
type CaseWriter interface {
	Write(c *watcher.Case) error
	Flush() error
}

// NewCaseWriter returns a writer for format: "jsonl" (every field), "table" (aligned
// columns), "csv" (formula-safe) or "line" (one readable line per case, for a terminal
// following a watch; it flushes every line). Dates are the CT time of the case's first
// certificate.
func NewCaseWriter(w io.Writer, format string) (CaseWriter, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	switch format {
	case "jsonl", "json":
		return &caseJSONL{w: bw, enc: json.NewEncoder(SafeJSON(bw))}, nil
	case "table":
		return &caseTable{w: bw}, nil
	case "line":
		return &caseLine{w: bw}, nil
	case "csv":
		cw := csv.NewWriter(bw)
		err := cw.Write([]string{"ct_seen", "first_read", "last_seen", "domain", "names", "brand", "score", "verdict", "first_score",
			"reasons", "registrar", "registered", "site_verdict", "label", "label_by", "cert_count", "log", "cert_index", "issuer",
			"not_before", "fingerprint", "rules_version", "rescored_score", "rescored_verdict", "rescored_rules_version"})
		return &caseCSV{bw: bw, w: cw}, err
	}
	return nil, fmt.Errorf("unknown format %q (use jsonl, table, csv or line)", format)
}

// caseJSONL uses encoding/json (it escapes <, > and & and replaces invalid UTF-8) through
// SafeJSON (C1 and bidirectional controls), so a hostile value cannot break out of the line,
// out of an HTML page that embeds it, or reorder what a terminal shows.
type caseJSONL struct {
	w   *bufio.Writer
	enc *json.Encoder
}

// Write adds "points", the score's points before the cap at 100 (what --order points ranks by).
func (j *caseJSONL) Write(c *watcher.Case) error {
	return j.enc.Encode(struct {
		*watcher.Case
		Points int `json:"points"`
	}{c, c.Score.Points()})
}

func (j *caseJSONL) Flush() error { return j.w.Flush() }

func timeCell(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func dateCell(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}

// Facts are the columns every listing shows about a case, as plain strings ("-" when unknown).
type Facts struct {
	Registrar, Registered, Site, Label, LabelBy string
}

// FactsOf reads a case's listing columns.
func FactsOf(c *watcher.Case) Facts {
	f := Facts{Registrar: "-", Registered: "-", Site: "-", Label: "-", LabelBy: ""}
	if en := c.Enrichment; en != nil {
		if en.Registration.Registrar != "" {
			f.Registrar = en.Registration.Registrar
		}
		if d := dateCell(en.Registration.Created); d != "" {
			f.Registered = d
		} else {
			f.Registered = string(en.Registration.State)
		}
	}
	if s := c.Site(); s != nil {
		f.Site = string(s.Verdict)
	}
	if c.Label != nil {
		f.Label, f.LabelBy = string(c.Label.Label), c.Label.By
	}
	return f
}

func names(c *watcher.Case) string {
	parts := make([]string, 0, len(c.Names))
	for _, n := range c.Names {
		s := n.Name
		if n.Wildcard {
			s = "*." + s
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

type caseCSV struct {
	bw *bufio.Writer
	w  *csv.Writer
}

func (c *caseCSV) Write(cs *watcher.Case) error {
	var rs, rv, rver string
	if cs.Rescored != nil {
		rs, rv, rver = strconv.Itoa(cs.Rescored.Score), string(cs.Rescored.Verdict), SafeCell(cs.Rescored.RulesVersion)
	}
	f := FactsOf(cs)
	// "-" for unknown reads well in a table, but a spreadsheet would take it for a formula.
	for _, v := range []*string{&f.Registrar, &f.Registered, &f.Site, &f.Label} {
		if *v == "-" {
			*v = ""
		}
	}
	return c.w.Write([]string{timeCell(cs.CTSeen), timeCell(cs.FirstSeen), timeCell(cs.LastSeen), SafeCell(cs.Registrable), SafeCell(names(cs)),
		SafeCell(cs.Brand), strconv.Itoa(cs.Score.Score), string(cs.Score.Verdict), strconv.Itoa(cs.FirstScore.Score),
		SafeCell(ReasonSummary(&cs.Score)), SafeCell(f.Registrar), SafeCell(f.Registered), f.Site, f.Label, SafeCell(f.LabelBy),
		strconv.Itoa(cs.CertCount), SafeCell(cs.Cert.LogURL), strconv.FormatInt(cs.Cert.Index, 10), SafeCell(cs.Cert.Issuer),
		timeCell(cs.Cert.NotBefore), SafeCell(cs.Cert.Fingerprint), SafeCell(cs.Score.RulesVersion), rs, rv, rver})
}

func (c *caseCSV) Flush() error {
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return err
	}
	return c.bw.Flush()
}

type caseTable struct {
	w      *bufio.Writer
	header bool
}

const tableRow = "%-16s %-7s %5s %6s  %-10s %-34s %5s  %-22s %-10s %-9s %-7s %s\n"

func (t *caseTable) writeHeader() {
	if !t.header {
		fmt.Fprintf(t.w, tableRow, "CT SEEN (UTC)", "VERDICT", "SCORE", "POINTS", "BRAND", "DOMAIN", "NAMES", "REGISTRAR", "REGISTERED", "SITE", "LABEL", "WHY")
		t.header = true
	}
}

func (t *caseTable) Write(c *watcher.Case) error {
	t.writeHeader()
	verdict, score, why := string(c.Score.Verdict), strconv.Itoa(c.Score.Score), ReasonSummary(&c.Score)
	points := c.Score.Points()
	if r := c.Rescored; r != nil {
		// Rescored: the new verdict and score after the stored ones, and the new reasons.
		verdict, score, why = verdict+">"+string(r.Verdict), score+">"+strconv.Itoa(r.Score), ReasonSummary(r)
		points = r.Points()
	}
	f := FactsOf(c)
	_, err := fmt.Fprintf(t.w, tableRow, c.CTSeen.UTC().Format("2006-01-02 15:04"), verdict, score, strconv.Itoa(points), Printable(c.Brand),
		Printable(c.Registrable), strconv.Itoa(len(c.Names)), Printable(clip(f.Registrar, 22)), f.Registered, f.Site, f.Label, Printable(why))
	return err
}

// Flush writes the header even when no row was written: an empty table still says what it is.
func (t *caseTable) Flush() error {
	t.writeHeader()
	return t.w.Flush()
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

type caseLine struct{ w *bufio.Writer }

func (l *caseLine) Write(c *watcher.Case) error {
	why := make([]string, 0, len(c.Score.Reasons))
	for _, r := range c.Score.Reasons {
		why = append(why, r.Detail)
	}
	cert := ""
	if c.Cert.LogURL != "" || c.Cert.Issuer != "" {
		cert = fmt.Sprintf("  [%s, %s #%d]", Printable(c.Cert.Issuer), Printable(c.Cert.LogURL), c.Cert.Index)
	}
	fmt.Fprintf(l.w, "%s  %-5s %3d  %-8s %s  %s%s\n", c.FirstSeen.Local().Format("15:04:05"), strings.ToUpper(string(c.Score.Verdict)),
		c.Score.Score, Printable(c.Brand), Printable(names(c)), Printable(strings.Join(why, "; ")), cert)
	return l.w.Flush()
}

func (l *caseLine) Flush() error { return l.w.Flush() }
