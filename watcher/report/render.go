package report

import (
	"bufio"
	_ "embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher/output"
)

// Formats lists what Write renders.
var Formats = []string{"html", "md", "csv", "json"}

// Write renders rep in format.
func Write(w io.Writer, rep *Report, format string) error {
	bw := bufio.NewWriter(w)
	var err error
	switch format {
	case "html":
		view := htmlView{Report: rep, Chart: chartOf(rep)}
		for _, d := range rep.AlertsPerDay {
			view.ChartMax = max(view.ChartMax, d.Count)
		}
		err = htmlReport.Execute(bw, view)
	case "md", "markdown":
		err = writeMarkdown(bw, rep)
	case "csv":
		err = writeCSV(bw, rep)
	case "json":
		enc := json.NewEncoder(output.SafeJSON(bw))
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	default:
		return fmt.Errorf("unknown report format %q (use %s)", format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

func date(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.DateOnly)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

func cloneText(c *int) string {
	if c == nil {
		return "not checked"
	}
	return strconv.Itoa(*c)
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// Bar is one day of the alerts chart, in SVG coordinates.
type Bar struct {
	X, Y, W, H int
	Day        string
	Count      int
}

type htmlView struct {
	*Report
	Chart    []Bar
	ChartMax int
}

const chartHeight = 60

func chartOf(rep *Report) []Bar {
	maxCount := 1
	for _, d := range rep.AlertsPerDay {
		maxCount = max(maxCount, d.Count)
	}
	bars := make([]Bar, len(rep.AlertsPerDay))
	for i, d := range rep.AlertsPerDay {
		h := d.Count * chartHeight / maxCount
		if d.Count > 0 && h < 2 {
			h = 2
		}
		bars[i] = Bar{X: i * 10, Y: chartHeight - h, W: 8, H: h, Day: d.Day, Count: d.Count}
	}
	return bars
}

//go:embed report.html.tmpl
var htmlTemplateText string

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"date": date, "stamp": stamp, "clone": cloneText, "dash": orDash, "join": strings.Join,
	"printable": output.Printable,
}).Parse(htmlTemplateText))

// mdEscape keeps outside text from becoming Markdown (or HTML, which Markdown passes through).
func mdEscape(s string) string {
	s = output.Printable(s)
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '`', '*', '_', '[', ']', '#', '|', '<', '>', '~':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n', '\r':
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func writeMarkdown(w io.Writer, rep *Report) error {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	title := "all brands"
	if rep.Brand != "" {
		title = mdEscape(rep.Brand)
	}
	p("# helpwatch daily report: %s\n\n", title)
	p("Period %s to %s. Generated %s.\n\n", stamp(rep.From), stamp(rep.To), stamp(rep.GeneratedAt))
	s := rep.Summary
	p("| new | alerts | watch | labeled benign | still live | went dark or suspended | came back |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	p("| %d | %d | %d | %d | %d | %d | %d |\n\n", s.New, s.Alerts, s.Watch, s.Benign, s.StillLive, s.WentDark, s.CameBack)
	if len(rep.Sections) == 0 {
		p("No new findings in this period.\n\n")
	}
	for _, sec := range rep.Sections {
		p("## %s: %d alert, %d watch\n\n", mdEscape(sec.Brand), sec.Alerts, sec.Watch)
		for _, it := range sec.Items {
			label := ""
			if it.Label != "" {
				label = ", labeled " + string(it.Label)
				if it.LabelBy != "" {
					label += " by " + mdEscape(it.LabelBy)
				}
			}
			p("### %s (%s, %d%s)\n\n", mdEscape(it.Domain), it.Verdict, it.Score, label)
			if it.LabelNote != "" {
				p("Label note: %s\n\n", mdEscape(it.LabelNote))
			}
			p("Names: %s\n\n", mdEscape(strings.Join(it.Names, ", ")))
			for _, r := range it.Reasons {
				p("- %s\n", mdEscape(r))
			}
			p("\n")
			p("- registrar: %s; registered %s; abuse contact: %s\n", mdEscape(orDash(it.Registrar)), date(it.Created), mdEscape(orDash(it.AbuseEmail)))
			p("- addresses: %s; state: %s\n", mdEscape(orDash(strings.Join(it.Addresses, ", "))), it.State)
			p("- phones: %s; clone score: %s\n", mdEscape(orDash(strings.Join(it.Phones, ", "))), cloneText(it.CloneScore))
			p("- first in CT %s (read %s); certificate: %s #%d, issuer %s\n\n", stamp(it.FirstSeen), stamp(it.ReadAt), mdEscape(orDash(it.Cert.LogURL)), it.Cert.Index, mdEscape(orDash(it.Cert.Issuer)))
		}
	}
	if rep.Previous != nil {
		p("## Since the previous report (%s)\n\n", stamp(*rep.Previous))
		for _, group := range []struct {
			title string
			list  []Change
		}{{"Still live", rep.Changes.StillLive}, {"Went dark or suspended", rep.Changes.WentDark}, {"Came back", rep.Changes.CameBack}} {
			p("**%s** (%d)", group.title, len(group.list))
			for i, c := range group.list {
				if i == 0 {
					p(": ")
				} else {
					p(", ")
				}
				p("%s", mdEscape(c.Domain))
				if c.Now != c.Was {
					p(" (%s)", mdEscape(c.Now))
				}
			}
			p("\n\n")
		}
	}
	if len(rep.Takedowns) > 0 {
		p("## Time to takedown per registrar\n\n| registrar | reported | taken down | median time |\n|---|---:|---:|---:|\n")
		for _, t := range rep.Takedowns {
			p("| %s | %d | %d | %s |\n", mdEscape(t.Registrar), t.Reported, t.TakenDown, t.MedianText())
		}
		p("\n")
	}
	return nil
}

func writeCSV(w io.Writer, rep *Report) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"brand", "domain", "names", "verdict", "score", "first_score", "label", "reasons", "registrar", "registered", "abuse_email",
		"addresses", "phones", "clone_score", "site_verdict", "state", "ct_seen", "first_read", "log", "cert_index", "issuer", "rules_version"})
	cell := output.SafeCell
	for _, sec := range rep.Sections {
		for _, it := range sec.Items {
			clone := ""
			if it.CloneScore != nil {
				clone = strconv.Itoa(*it.CloneScore)
			}
			registered := ""
			if !it.Created.IsZero() {
				registered = it.Created.Format(time.DateOnly)
			}
			cw.Write([]string{cell(sec.Brand), cell(it.Domain), cell(strings.Join(it.Names, " ")), string(it.Verdict), strconv.Itoa(it.Score),
				strconv.Itoa(it.FirstScore), string(it.Label), cell(strings.Join(it.Reasons, "; ")), cell(it.Registrar), registered, cell(it.AbuseEmail),
				cell(strings.Join(it.Addresses, " ")), cell(strings.Join(it.Phones, " ")), clone, it.Site, it.State,
				it.FirstSeen.UTC().Format(time.RFC3339), it.ReadAt.UTC().Format(time.RFC3339), cell(it.Cert.LogURL),
				strconv.FormatInt(it.Cert.Index, 10), cell(it.Cert.Issuer), cell(it.RulesUsed)})
		}
	}
	cw.Flush()
	return cw.Error()
}
