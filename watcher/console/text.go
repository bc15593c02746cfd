package console

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/helpwatch/helpwatch/watcher/output"
)

// WriteText prints a case as the case page shows it, for a terminal ('helpwatch show'). Every
// outside string goes through output.Printable.
func WriteText(w io.Writer, v *CaseView) error {
	fmtTime := formatWhen
	b := bufio.NewWriter(w)
	p := output.Printable
	c := v.Case
	line := func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }
	line("%s", p(c.Registrable))
	points := ""
	if v.Total != c.Score.Score {
		points = fmt.Sprintf(" (points %d)", v.Total)
	}
	line("  %s, score %d%s, brand %s, rules %s", c.Score.Verdict, c.Score.Score, points, orDash(p(c.Brand)), p(c.Score.RulesVersion))
	if c.Label != nil {
		line("  labelled %s by %s: %s", c.Label.Label, p(c.Label.By), p(c.Label.Note))
	}
	line("\nWhy")
	for _, r := range c.Score.Reasons {
		line("  %+4d  %-18s %s", r.Points, p(r.Rule), p(r.Detail))
	}
	line("\nNames and certificates")
	for _, n := range c.Names {
		link := crtshLink(n.Cert.Fingerprint)
		line("  %-40s %3d  first in CT %s  %s  %s", p(n.Name), n.Score.Score, fmtTime(n.CTSeen), orDash(p(n.Cert.Issuer)), orDash(link))
	}
	line("\nRegistration and DNS")
	if en := c.Enrichment; en != nil {
		r := en.Registration
		line("  registration %s: registrar %s, created %s, abuse %s %s", r.State, orDash(p(r.Registrar)), fmtTime(r.Created), orDash(p(r.AbuseEmail)), p(strings.Join(r.Statuses, ", ")))
		for _, d := range en.DNS {
			line("  %-40s %s  %s", p(d.Name), d.State, p(strings.Join(append(append(append([]string{}, d.A...), d.AAAA...), d.CNAME...), " ")))
		}
	} else {
		line("  not enriched yet")
	}
	line("\nSite checks")
	if len(c.Sites) == 0 {
		line("  no site check yet")
	}
	for _, s := range c.Sites {
		line("  %s: %s, content score %d, HTTP %d, %s %s", p(s.Name), s.Verdict, s.Score, s.Status, fmtTime(s.At), p(s.Error))
		for _, ph := range s.Phones {
			line("    phone %s%s", p(ph.E164), map[bool]string{true: " (toll-free)"}[ph.TollFree])
		}
		for _, pg := range s.Pages {
			line("    page %s: %s (%d)", p(pg.URL), pg.Verdict, pg.Score)
		}
	}
	line("\nCaptures")
	if len(v.Captures) == 0 {
		line("  not captured")
	}
	for _, cp := range v.Captures {
		line("  %s %s: %s", fmtTime(cp.At), p(cp.Name), cp.Verdict)
		if cp.Cloaked {
			line("    cloaking: %s", p(cp.Cloaking))
		}
		if h := cp.Hosting; h != nil {
			line("    hosting: %s %s %s, abuse %s", orDash(p(h.Org)), p(h.Network), p(h.Country), orDash(p(h.AbuseEmail)))
		}
		for _, s := range cp.Shots {
			line("    %s: %s, HTTP %d from %s, screenshot %s", p(s.Profile), s.Verdict, s.Status, orDash(p(s.Address)), orDash(s.Screenshot))
		}
	}
	line("\nShared with other cases")
	if len(v.Shared) == 0 {
		line("  nothing")
	}
	for _, s := range v.Shared {
		line("  %s: %s", p(s.What), p(strings.Join(s.Others, ", ")))
	}
	line("\nAbuse reports")
	if len(v.Reports) == 0 {
		line("  none")
	}
	for _, r := range v.Reports {
		line("  #%d %s %s: %s", r.ID, r.Destination, p(r.Registrar), r.State)
	}
	line("\nTimeline")
	for _, e := range v.Timeline {
		if e.At.IsZero() {
			continue
		}
		who := ""
		if e.Who != "" {
			who = " by " + p(e.Who)
		}
		notes := ""
		if e.Notes != "" {
			notes = ": " + p(e.Notes)
		}
		line("  %s  %s%s%s", fmtTime(e.At), p(e.What), who, notes)
	}
	return b.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
