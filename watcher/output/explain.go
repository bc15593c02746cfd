package output

import (
	"fmt"
	"io"
	"strings"

	"github.com/helpwatch/helpwatch/rules"
)

// Explain renders one result for people: the verdict, then each rule with its points.
func Explain(r *rules.Result, alert, watch int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", Printable(r.Domain))
	if r.Unicode != "" {
		fmt.Fprintf(&b, "  displayed as   %s\n", Printable(r.Unicode))
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "  invalid: %s\n", Printable(r.Error))
		return b.String()
	}
	fmt.Fprintf(&b, "  registrable    %s\n", Printable(r.Registrable))
	brand := r.Brand
	if brand == "" {
		brand = "-"
	}
	fmt.Fprintf(&b, "  brand          %s\n", Printable(brand))
	fmt.Fprintf(&b, "  score          %d -> %s (alert at %d, watch at %d; rules %s)\n", r.Score, r.Verdict, alert, watch, r.RulesVersion)
	if len(r.Reasons) == 0 {
		b.WriteString("  no rule fired\n")
	}
	for _, re := range r.Reasons {
		fmt.Fprintf(&b, "  %+4d  %-22s %s\n", re.Points, re.Rule, Printable(re.Detail))
	}
	return b.String()
}

// WriteEvalReport prints a rules-test report: a summary table, the mistakes with their
// reasons (up to show per corpus; with alertMisses also the positives only at watch, the
// misses of an alert gate), and how often each rule fired.
func WriteEvalReport(w io.Writer, rep *rules.EvalReport, show int, quiet, alertMisses bool) {
	fmt.Fprintf(w, "rules %s\n\n", rep.RulesVersion)
	fmt.Fprintf(w, "%-34s %-8s %7s %8s %7s %7s %8s %8s %7s\n", "corpus", "kind", "names", "flagged", "alert", "watch", "flag%", "alert%", "invalid")
	for i := range rep.Corpora {
		c := &rep.Corpora[i]
		kind := "negative"
		if c.Positive {
			kind = "positive"
		}
		fmt.Fprintf(w, "%-34s %-8s %7d %8d %7d %7d %7.3f%% %7.3f%% %7d\n", c.Name, kind, c.Total, c.Flagged(), c.Alerts, c.Watches, 100*c.FlagRate(), 100*c.AlertRate(), c.Invalid)
	}
	if quiet {
		return
	}
	list := func(title string, rs []rules.Result) {
		fmt.Fprintf(w, "\n%s: %d\n", title, len(rs))
		for j, r := range rs {
			if j >= show {
				fmt.Fprintf(w, "  ... %d more\n", len(rs)-show)
				break
			}
			fmt.Fprintf(w, "  %-40s %3d %-6s %s\n", Printable(r.Domain), r.Score, r.Verdict, Printable(ReasonSummary(&r)))
		}
	}
	for i := range rep.Corpora {
		c := &rep.Corpora[i]
		if len(c.Wrong) == 0 && len(c.Invalids) == 0 && (len(c.WatchOnly) == 0 || !alertMisses) {
			continue
		}
		what := "false positives (flagged)"
		if c.Positive {
			what = "false negatives (not flagged)"
		}
		if len(c.Wrong) > 0 || len(c.Invalids) > 0 {
			list(what+" in "+c.Name, c.Wrong)
		}
		if len(c.WatchOnly) > 0 && alertMisses {
			list("flagged watch, not alert, in "+c.Name, c.WatchOnly)
		}
		for j, r := range c.Invalids {
			if j >= show {
				break
			}
			fmt.Fprintf(w, "  invalid: %-40s %s\n", Printable(r.Domain), Printable(r.Error))
		}
	}
	fmt.Fprintf(w, "\nrules fired (names):\n")
	for _, k := range rep.RulesByCount() {
		fmt.Fprintf(w, "  %-24s %d\n", k, rep.RuleFired[k])
	}
	fmt.Fprintln(w)
}
