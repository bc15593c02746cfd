// Package report builds the daily domain report from the store and renders it as HTML (one
// self-contained file), Markdown, CSV or JSON. Everything in it that came from outside (names,
// registrar names, reasons quoting names) is escaped by each renderer for its format.
package report

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Source is what a report reads; the store implements it.
type Source interface {
	Cases(ctx context.Context, q store.Query) ([]watcher.Case, error)
	Case(ctx context.Context, registrable string) (*watcher.Case, bool, error)
	LatestChecks(ctx context.Context, at time.Time) (map[string]store.Check, error)
	PreviousReportRun(ctx context.Context, to time.Time, brand string) (*store.ReportRun, bool, error)
	RecordReportRun(ctx context.Context, run *store.ReportRun) error
	AlertsPerDay(ctx context.Context, from, to time.Time, brand string) ([]store.DayCount, error)
	ReportedDomains(ctx context.Context, open bool) ([]store.ReportedDomain, error)
}

// Options choose the period and the brand.
type Options struct {
	From, To time.Time // cases whose first certificate's CT time is in [From, To)
	Brand    string    // "" for all brands
	Now      time.Time // the report's time (default time.Now)
	// Record keeps this report's list in the store, so the next report can say what changed.
	Record bool
}

// Report is everything one daily report shows.
type Report struct {
	GeneratedAt  time.Time           `json:"generated_at"`
	From         time.Time           `json:"from"`
	To           time.Time           `json:"to"`
	Brand        string              `json:"brand,omitempty"`
	Summary      Summary             `json:"summary"`
	Sections     []Section           `json:"brands"`
	Changes      Changes             `json:"changes"`
	AlertsPerDay []store.DayCount    `json:"alerts_per_day"`
	Takedowns    []RegistrarTakedown `json:"takedowns,omitempty"`
	Previous     *time.Time          `json:"previous_report,omitempty"`
}

// Summary is the counts at the top. Cases an analyst labeled benign are listed (marked) but
// counted apart, never as alerts.
type Summary struct {
	New       int `json:"new"`
	Alerts    int `json:"alerts"`
	Watch     int `json:"watch"`
	Benign    int `json:"labeled_benign"`
	StillLive int `json:"still_live"`
	WentDark  int `json:"went_dark_or_suspended"`
	CameBack  int `json:"came_back"`
}

// Section is one brand's new findings, alerts first.
type Section struct {
	Brand  string `json:"brand"`
	Alerts int    `json:"alerts"`
	Watch  int    `json:"watch"`
	Items  []Item `json:"items"`
}

// Item is one case as the report shows it: its score now (derived from every fact), its
// names, and the facts behind it.
type Item struct {
	Domain      string              `json:"domain"` // the case: its registrable domain
	Names       []string            `json:"names"`
	Unicode     string              `json:"unicode,omitempty"`
	Registrable string              `json:"registrable"`
	Brand       string              `json:"brand"`
	Verdict     rules.Verdict       `json:"verdict"`
	Score       int                 `json:"score"`
	Points      int                 `json:"points"` // before the cap at 100: what ranks
	FirstScore  int                 `json:"first_score"`
	Reasons     []string            `json:"reasons"`
	Lookup      watcher.LookupState `json:"registration_lookup,omitempty"`
	Registrar   string              `json:"registrar,omitempty"`
	AbuseEmail  string              `json:"abuse_email,omitempty"`
	Created     time.Time           `json:"registered,omitzero"`
	Addresses   []string            `json:"addresses,omitempty"`
	Phones      []string            `json:"phones,omitempty"`      // from the site check, when it ran
	CloneScore  *int                `json:"clone_score,omitempty"` // from the site check, when it ran
	FirstSeen   time.Time           `json:"ct_seen"`               // the first certificate's CT time
	ReadAt      time.Time           `json:"first_read"`            // when helpwatch read it
	CertCount   int                 `json:"cert_count"`
	Cert        watcher.Certificate `json:"certificate"`
	State       string              `json:"state"`
	Site        string              `json:"site_verdict,omitempty"` // clone, helpline, parked, benign
	// SitePages are the linked pages the site verdict was reached on, each as it was judged.
	SitePages []SitePage  `json:"site_pages,omitempty"`
	Label     rules.Label `json:"label,omitempty"` // scam, benign, unsure
	LabelBy   string      `json:"label_by,omitempty"`
	LabelNote string      `json:"label_note,omitempty"`
	RulesUsed string      `json:"rules_version"`
}

// SitePage is one linked page of a checked site: where, what it was judged, its numbers.
type SitePage struct {
	URL     string   `json:"url"`
	Verdict string   `json:"verdict"`
	Score   int      `json:"content_score"`
	Phones  []string `json:"phones,omitempty"`
}

// Changes are what happened to the domains of the previous report.
type Changes struct {
	StillLive []Change `json:"still_live"`
	WentDark  []Change `json:"went_dark_or_suspended"`
	CameBack  []Change `json:"came_back"`
}

// Change is one domain's state then and now.
type Change struct {
	Domain string `json:"domain"`
	Was    string `json:"was"`
	Now    string `json:"now"`
	Detail string `json:"detail,omitempty"`
}

// RegistrarTakedown is how a registrar answered abuse reports.
type RegistrarTakedown struct {
	Registrar string        `json:"registrar"`
	Reported  int           `json:"reported"`
	TakenDown int           `json:"taken_down"`
	Median    time.Duration `json:"median_time_to_takedown_ns,omitempty"`
}

// MedianText renders the median time to takedown for people.
func (t RegistrarTakedown) MedianText() string {
	if t.TakenDown == 0 {
		return "-"
	}
	return humanDuration(t.Median)
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 72*time.Hour:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}

// Build reads the store and assembles the report.
func Build(ctx context.Context, src Source, opts Options) (*Report, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now().UTC()
	}
	if !opts.From.Before(opts.To) {
		return nil, fmt.Errorf("empty report period %s to %s", opts.From.Format(time.RFC3339), opts.To.Format(time.RFC3339))
	}
	rep := &Report{GeneratedAt: opts.Now.UTC(), From: opts.From.UTC(), To: opts.To.UTC(), Brand: opts.Brand}
	found, err := src.Cases(ctx, store.Query{Since: opts.From, Until: opts.To, Brand: opts.Brand})
	if err != nil {
		return nil, err
	}
	checks, err := src.LatestChecks(ctx, opts.To)
	if err != nil {
		return nil, err
	}
	bySection := map[string]*Section{}
	states := map[string]string{}
	for i := range found {
		c := &found[i]
		forced := false
		if c.Label != nil {
			decided, report, _ := c.Label.Label.Decides()
			forced = decided && report
		}
		if c.Verdict().Rank() < rules.VerdictWatch.Rank() && !forced {
			continue // below watch (parked, long-registered), unless an analyst says scam
		}
		it := itemOf(c, checks)
		states[it.Domain] = it.State
		brand := it.Brand
		if brand == "" {
			brand = "(printer words, no brand)"
		}
		sec := bySection[brand]
		if sec == nil {
			sec = &Section{Brand: brand}
			bySection[brand] = sec
		}
		switch {
		case it.Label == rules.LabelBenign:
			rep.Summary.Benign++
		case it.Verdict == rules.VerdictAlert || it.Label == rules.LabelScam:
			sec.Alerts++
			rep.Summary.Alerts++
		default:
			sec.Watch++
			rep.Summary.Watch++
		}
		sec.Items = append(sec.Items, it)
	}
	for _, sec := range bySection {
		sort.SliceStable(sec.Items, func(i, j int) bool {
			a, b := sec.Items[i], sec.Items[j]
			if a.Score != b.Score {
				return a.Score > b.Score
			}
			if a.Points != b.Points {
				return a.Points > b.Points // more evidence ranks higher where the cap ties
			}
			return a.Domain < b.Domain
		})
		rep.Sections = append(rep.Sections, *sec)
	}
	sort.Slice(rep.Sections, func(i, j int) bool {
		a, b := rep.Sections[i], rep.Sections[j]
		if a.Alerts != b.Alerts {
			return a.Alerts > b.Alerts
		}
		return a.Brand < b.Brand
	})

	prev, ok, err := src.PreviousReportRun(ctx, opts.To, opts.Brand)
	if err != nil {
		return nil, err
	}
	if ok {
		at := prev.At
		rep.Previous = &at
		if err := changes(ctx, src, rep, prev, checks, states); err != nil {
			return nil, err
		}
	}
	rep.Summary.New = 0
	for _, sec := range rep.Sections {
		for _, it := range sec.Items {
			if prev == nil || prev.States[it.Domain] == "" {
				rep.Summary.New++
			}
		}
	}
	rep.Summary.StillLive, rep.Summary.WentDark, rep.Summary.CameBack = len(rep.Changes.StillLive), len(rep.Changes.WentDark), len(rep.Changes.CameBack)

	chartFrom := opts.To.UTC().Truncate(24*time.Hour).AddDate(0, 0, -29)
	days, err := src.AlertsPerDay(ctx, chartFrom, opts.To, opts.Brand)
	if err != nil {
		return nil, err
	}
	rep.AlertsPerDay = fillDays(days, chartFrom, 30)

	reported, err := src.ReportedDomains(ctx, false)
	if err != nil {
		return nil, err
	}
	rep.Takedowns = takedowns(reported)

	if opts.Record {
		if err := src.RecordReportRun(ctx, &store.ReportRun{At: opts.Now, From: opts.From, To: opts.To, Brand: opts.Brand, States: states}); err != nil {
			return nil, fmt.Errorf("recording the report run: %w", err)
		}
	}
	return rep, nil
}

// changes compares the previous report's domains with their state now. Domains that are still
// followed (live, or dark but reported) are carried into this run's states so the chain of
// reports keeps following them.
func changes(ctx context.Context, src Source, rep *Report, prev *store.ReportRun, checks map[string]store.Check, states map[string]string) error {
	names := make([]string, 0, len(prev.States))
	for n := range prev.States {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		was := prev.States[name]
		now := was
		detail := ""
		if c, ok := checks[name]; ok && c.At.After(prev.At) {
			now, detail = c.State, c.Detail
		} else if cs, ok, err := src.Case(ctx, name); err == nil && ok {
			now = stateOf(cs, nil)
		}
		ch := Change{Domain: name, Was: was, Now: now, Detail: detail}
		switch {
		case was == store.StateLive && now == store.StateLive:
			rep.Changes.StillLive = append(rep.Changes.StillLive, ch)
		case was == store.StateLive && (now == store.StateDark || now == store.StateSuspended || now == store.StateCleared):
			rep.Changes.WentDark = append(rep.Changes.WentDark, ch)
		case (was == store.StateDark || was == store.StateSuspended || was == store.StateCleared) && now == store.StateLive:
			rep.Changes.CameBack = append(rep.Changes.CameBack, ch)
		}
		if _, listed := states[name]; !listed {
			states[name] = now
		}
	}
	return nil
}

func itemOf(c *watcher.Case, checks map[string]store.Check) Item {
	it := Item{Domain: c.Registrable, Registrable: c.Registrable, Brand: c.Brand, Verdict: c.Score.Verdict, Score: c.Score.Score, Points: c.Score.Points(),
		FirstScore: c.FirstScore.Score, FirstSeen: c.CTSeen, ReadAt: c.FirstSeen, Cert: c.Cert, CertCount: c.CertCount,
		RulesUsed: c.Score.RulesVersion}
	for _, n := range c.Names {
		name := n.Name
		if n.Wildcard {
			name = "*." + name
		}
		it.Names = append(it.Names, name)
		if it.Unicode == "" && n.Unicode != "" && n.Name == c.Registrable {
			it.Unicode = n.Unicode
		}
	}
	for _, r := range c.Score.Reasons {
		if r.Points != 0 {
			it.Reasons = append(it.Reasons, fmt.Sprintf("%s (%+d)", r.Detail, r.Points))
		}
	}
	if en := c.Enrichment; en != nil {
		reg := en.Registration
		it.Lookup = reg.State
		it.Registrar, it.AbuseEmail, it.Created = clean(reg.Registrar), clean(reg.AbuseEmail), reg.Created
		it.Addresses = c.Addresses()
	}
	if sc := c.Site(); sc != nil && sc.Verdict != rules.SiteUnreachable {
		for _, p := range sc.Phones {
			it.Phones = append(it.Phones, p.E164)
		}
		score := sc.Score
		it.CloneScore = &score
		it.Site = string(sc.Verdict)
		for _, p := range sc.Pages {
			sp := SitePage{URL: clean(p.URL), Verdict: string(p.Verdict), Score: p.Score}
			for _, ph := range p.Phones {
				sp.Phones = append(sp.Phones, ph.E164)
			}
			it.SitePages = append(it.SitePages, sp)
		}
	}
	if l := c.Label; l != nil {
		it.Label, it.LabelBy, it.LabelNote = l.Label, clean(l.By), clean(l.Note)
	}
	for i, r := range it.Reasons {
		it.Reasons[i] = clean(r)
	}
	it.Cert.Issuer, it.Cert.LogURL, it.Cert.LogName = clean(it.Cert.Issuer), clean(it.Cert.LogURL), clean(it.Cert.LogName)
	it.State = stateOf(c, checks)
	return it
}

// clean makes outside text one printable line (no control characters or line breaks); each
// renderer still escapes it for its own format.
func clean(s string) string { return strings.Join(strings.Fields(output.Printable(s)), " ") }

// stateOf is the latest liveness check of the case, else what enrichment's DNS said: live when
// any name resolves.
func stateOf(c *watcher.Case, checks map[string]store.Check) string {
	if chk, ok := checks[c.Registrable]; ok {
		return chk.State
	}
	if c.Enrichment == nil {
		return store.StateUnknown
	}
	if len(c.Addresses()) > 0 {
		return store.StateLive
	}
	switch c.Enrichment.Lookups() {
	case watcher.NotFound, watcher.Found:
		return store.StateDark // NXDOMAIN, or delegated without an address
	}
	return store.StateUnknown
}

func fillDays(days []store.DayCount, from time.Time, n int) []store.DayCount {
	have := map[string]int{}
	for _, d := range days {
		have[d.Day] = d.Count
	}
	out := make([]store.DayCount, n)
	for i := range out {
		day := from.AddDate(0, 0, i).Format(time.DateOnly)
		out[i] = store.DayCount{Day: day, Count: have[day]}
	}
	return out
}

func takedowns(reported []store.ReportedDomain) []RegistrarTakedown {
	by := map[string]*RegistrarTakedown{}
	waits := map[string][]time.Duration{}
	for _, d := range reported {
		if d.Destination != store.DestRegistrar && d.Destination != store.DestHosting {
			continue
		}
		// Registrars and hosting providers are ranked apart: a hosting desk takes a page
		// down, a registrar a domain.
		key := d.Destination + "\x00" + d.Registrar
		t := by[key]
		if t == nil {
			name := clean(d.Registrar)
			if d.Destination == store.DestHosting {
				name = "hosting: " + name
			}
			t = &RegistrarTakedown{Registrar: name}
			by[key] = t
		}
		t.Reported++
		if !d.TakenDownAt.IsZero() {
			t.TakenDown++
			waits[key] = append(waits[key], d.TakenDownAt.Sub(d.SentAt))
		}
	}
	var out []RegistrarTakedown
	for name, t := range by {
		if w := waits[name]; len(w) > 0 {
			sort.Slice(w, func(i, j int) bool { return w[i] < w[j] })
			t.Median = w[len(w)/2]
		}
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Registrar) < strings.ToLower(out[j].Registrar) })
	return out
}
