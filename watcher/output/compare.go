package output

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"

	"github.com/helpwatch/helpwatch/rules"
)

func verdictScore(r *rules.Result) string {
	brand := r.Brand
	if brand == "" {
		brand = "-"
	}
	return fmt.Sprintf("%s %d %s", r.Verdict, r.Score, Printable(brand))
}

func pct(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }

func delta(old, new float64) string {
	d := 100 * (new - old)
	if math.Abs(d) < 0.005 {
		return "(=)"
	}
	return fmt.Sprintf("(%+.2f)", d)
}

// WriteDiff prints a rule-set comparison: per corpus the change in recall (positives) or in
// alert and flag rate (negatives), then every name whose verdict or brand changes with the
// reasons under both rule sets (at most show per corpus; 0 for all).
func WriteDiff(w io.Writer, rep *rules.DiffReport, oldName, newName string, show int) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "old: %s (rules %s)\nnew: %s (rules %s)\n\n", Printable(oldName), Printable(rep.OldVersion), Printable(newName), Printable(rep.NewVersion))
	fmt.Fprintf(bw, "%-34s %-8s %7s  %-30s %-30s %s\n", "corpus", "kind", "names", "flagged old -> new", "alert old -> new", "changed")
	for _, c := range rep.Corpora {
		kind := "negative"
		switch {
		case c.Old.Unlabeled:
			kind = "names"
		case c.Old.Positive:
			kind = "positive"
		}
		fmt.Fprintf(bw, "%-34s %-8s %7d  %-30s %-30s %d\n", Printable(c.Old.Name), kind, c.Old.Total,
			fmt.Sprintf("%s -> %s %s", pct(c.Old.FlagRate()), pct(c.New.FlagRate()), delta(c.Old.FlagRate(), c.New.FlagRate())),
			fmt.Sprintf("%s -> %s %s", pct(c.Old.AlertRate()), pct(c.New.AlertRate()), delta(c.Old.AlertRate(), c.New.AlertRate())),
			len(c.Changes))
	}
	for _, c := range rep.Corpora {
		if len(c.Changes) == 0 {
			continue
		}
		changes := append([]rules.Change(nil), c.Changes...)
		rules.SortChanges(changes)
		fmt.Fprintf(bw, "\n%s: %d name(s) change\n", Printable(c.Old.Name), len(changes))
		for i, ch := range changes {
			if show > 0 && i == show {
				fmt.Fprintf(bw, "  ... %d more\n", len(changes)-show)
				break
			}
			fmt.Fprintf(bw, "  %-40s %s  ->  %s\n", Printable(ch.New.Domain), verdictScore(&ch.Old), verdictScore(&ch.New))
			fmt.Fprintf(bw, "      old: %s\n      new: %s\n", orNone(ReasonSummary(&ch.Old)), orNone(ReasonSummary(&ch.New)))
		}
	}
	return bw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "(no points)"
	}
	return Printable(s)
}

// WriteSweep prints recall and negative rate per threshold, every step points and at the
// rule set's own thresholds, which are marked.
func WriteSweep(w io.Writer, points []rules.SweepPoint, alert, watch, step int) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%9s %9s %12s %14s %12s\n", "threshold", "recall", "positives", "negative rate", "negatives")
	for _, p := range points {
		mark := ""
		switch p.Threshold {
		case alert:
			mark = "  <- alert"
		case watch:
			mark = "  <- watch"
		}
		if p.Threshold%step != 0 && mark == "" {
			continue
		}
		fmt.Fprintf(bw, "%9d %9s %12d %14s %12d%s\n", p.Threshold, pct(p.Recall), p.Positives, fmt.Sprintf("%.4f%%", 100*p.NegativeRate), p.Negatives, mark)
	}
	return bw.Flush()
}

// SweepSVG draws recall against the negative rate (log scale), one point per threshold, with
// the alert and watch thresholds marked: the trade-off a team chooses from.
func SweepSVG(w io.Writer, points []rules.SweepPoint, alert, watch int, title string) error {
	const (
		width, height = 640, 420
		left, right   = 70, 20
		top, bottom   = 40, 60
	)
	plotW, plotH := float64(width-left-right), float64(height-top-bottom)
	// The x axis spans 1e-5 .. 1 on a log scale; a rate of zero sits on the left edge.
	const minExp, maxExp = -5.0, 0.0
	xOf := func(rate float64) float64 {
		e := minExp
		if rate > 0 {
			e = math.Max(minExp, math.Log10(rate))
		}
		return float64(left) + (e-minExp)/(maxExp-minExp)*plotW
	}
	yOf := func(recall float64) float64 { return float64(top) + (1-recall)*plotH }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="14">%s</text>`+"\n", left, html.EscapeString(Printable(title)))
	// Grid and axes.
	for e := minExp; e <= maxExp; e++ {
		x := xOf(math.Pow(10, e))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x, top, x, height-bottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, height-bottom+16, fmt.Sprintf("%g%%", 100*math.Pow(10, e)))
	}
	for _, r := range []float64{0, 0.25, 0.5, 0.75, 1} {
		y := yOf(r)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, width-right, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n", left-6, y+4, 100*r)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">share of negatives at or above the threshold (log scale)</text>`+"\n", float64(left)+plotW/2, height-18)
	fmt.Fprintf(&b, `<text x="16" y="%.1f" text-anchor="middle" transform="rotate(-90 16 %.1f)">recall on positives</text>`+"\n", float64(top)+plotH/2, float64(top)+plotH/2)
	// The curve, from the highest threshold (bottom left) to zero (top right).
	var path strings.Builder
	for i := len(points) - 1; i >= 0; i-- {
		p := points[i]
		cmd := "L"
		if i == len(points)-1 {
			cmd = "M"
		}
		fmt.Fprintf(&path, "%s%.1f,%.1f ", cmd, xOf(p.NegativeRate), yOf(p.Recall))
	}
	fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#0969da" stroke-width="2"/>`+"\n", strings.TrimSpace(path.String()))
	// The two labels go on their own lines below the curve's top so they never overlap.
	for i, m := range []struct {
		t     int
		label string
		color string
	}{{watch, "watch", "#bf8700"}, {alert, "alert", "#cf222e"}} {
		if m.t < 0 || m.t >= len(points) {
			continue
		}
		p := points[m.t]
		x, y := xOf(p.NegativeRate), yOf(p.Recall)
		fmt.Fprintf(&b, `<circle class="threshold" cx="%.1f" cy="%.1f" r="5" fill="%s"/>`+"\n", x, y, m.color)
		ly := math.Min(y+24+float64(i)*18, float64(height-bottom-8))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", x, y+5, x, ly-12, m.color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="%s">%s at %d: recall %s, negatives %s</text>`+"\n", x+4, ly, m.color, m.label, m.t, pct(p.Recall), fmt.Sprintf("%.3f%%", 100*p.NegativeRate))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
