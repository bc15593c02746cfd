// Package abuse turns observed abuse into reports an abuse desk acts on without asking back,
// and follows each report up its takedown ladder.
//
// Prepare drafts, for every case whose stored capture shows a clone or helpline page (or that
// an analyst labelled scam), one report per destination: the registrar's and the hosting
// provider's abuse desks (an RFC 5322 message each, in the layout of the registrar
// community's guide, with the screenshot and an X-ARF v4 document attached), Netcraft's report
// API, and a Safe Browsing packet to paste by hand. Nothing leaves before an analyst approves
// (Approve); each approved report is then one job of kind "deliver" (Deliverer), sent exactly
// once through the address guard. Status re-checks reported domains and moves their reports to
// actioned; Ladder says where every report stands and which follow-ups and ICANN complaints are
// due (FollowUps).
package abuse

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Reporter is who sends the reports, from the reporter file.
type Reporter struct {
	Name         string `yaml:"name"`
	Organization string `yaml:"organization"`
	Email        string `yaml:"email"`
	Phone        string `yaml:"phone"`
	Website      string `yaml:"website"`
	// OnBehalfOf names the brands or coalition the reports are made for.
	OnBehalfOf string `yaml:"on_behalf_of"`
}

// LoadReporter reads and checks a reporter file:
//
//	name: Jane Doe
//	organization: Imaging Supplies Coalition
//	email: brand-protection@example.org
func LoadReporter(path string) (*Reporter, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reporter file: %w (it names who sends the reports: name, organization, email; start from docs/reporter.example.yaml)", err)
	}
	var r Reporter
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var problems []string
	if strings.TrimSpace(r.Name) == "" {
		problems = append(problems, "name is missing")
	}
	if a, err := mail.ParseAddress(r.Email); err != nil || a.Address != strings.TrimSpace(r.Email) {
		problems = append(problems, fmt.Sprintf("email %q is not a plain e-mail address", r.Email))
	}
	for field, v := range map[string]string{"name": r.Name, "organization": r.Organization, "phone": r.Phone, "website": r.Website, "on_behalf_of": r.OnBehalfOf} {
		if strings.ContainsAny(v, "\r\n") {
			problems = append(problems, field+" must be one line")
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("%s: %s", path, strings.Join(problems, "; "))
	}
	return &r, nil
}

// Source is what Prepare reads and records; the store implements it.
type Source interface {
	Cases(ctx context.Context, q store.Query) ([]watcher.Case, error)
	ReportedDestinations(ctx context.Context) (map[string]map[string]bool, error)
	LatestObservedCapture(ctx context.Context, caseID int64) (*watcher.Capture, bool, error)
	Artefact(ctx context.Context, sha string) (*store.Artefact, bool, error)
	RecordAbuseReport(ctx context.Context, r *store.AbuseReport) error
	SetReportState(ctx context.Context, id int64, state, actor, note string, at time.Time, deliver bool) error
}

// AllDestinations are the destinations a case is reported to unless told otherwise.
var AllDestinations = []string{store.DestRegistrar, store.DestHosting, store.DestNetcraft, store.DestSafeBrowsing}

// PrepareOptions choose what to report and where.
type PrepareOptions struct {
	Since        time.Time
	Destinations []string // default AllDestinations
	Outbox       string
	Now          time.Time
	// ApproveAbove approves at once the drafts of cases whose score is at least this and whose
	// capture shows a clone or helpline page (0: approve nothing; an analyst runs approve).
	ApproveAbove int
	// Actor is who prepares (and approves with ApproveAbove), for the ladder.
	Actor string
	// Rules is the deployment's rule set: the brands' real sites come from its catalog.
	Rules *rules.RuleSet
	// NetcraftURL is the report API (default NetcraftReportURL).
	NetcraftURL string
}

// Unreportable is a domain that could not be reported (yet), and why.
type Unreportable struct {
	Domain      string `json:"domain"`
	Destination string `json:"destination,omitempty"`
	Reason      string `json:"reason"`
}

// Prepared is what Prepare wrote.
type Prepared struct {
	Messages []*store.AbuseReport
	// NotYet are the cases that are not reportable yet, with the reason (never reached, no
	// content, only the name); Unreportable are the destinations a reportable case could not
	// be sent to (no abuse contact).
	NotYet       []Unreportable
	Unreportable []Unreportable
	ListFile     string // the file listing both, if any
	// Held are the cases an analyst's label keeps out: benign ones never go, unsure ones wait.
	Held []Unreportable
	// Approved are the drafts approved at once (ApproveAbove).
	Approved []*store.AbuseReport
}

// Evidence is what a report of one case rests on: a capture that shows the abuse, an
// analyst's scam label, or both.
type Evidence struct {
	Case     *watcher.Case
	Capture  *watcher.Capture // nil when only the label makes it reportable
	Shot     *watcher.Shot    // the capture's shot that shows the abuse
	Label    *rules.CaseLabel // a scam label, if any
	Artefact func(sha string) *store.Artefact
}

// Observed says the evidence includes a capture that shows the abuse.
func (e *Evidence) Observed() bool { return e.Shot != nil }

// notYet is why a case with no observed abuse cannot be reported.
func notYet(c *watcher.Case) string {
	sc := c.Site()
	switch {
	case sc == nil:
		return "only the name: its site was never checked"
	case sc.Verdict == rules.SiteUnreachable:
		return fmt.Sprintf("never reached: the site did not answer (last checked %s)", sc.At.UTC().Format("2006-01-02 15:04 UTC"))
	case sc.Verdict == rules.SiteParked:
		return "no content: a parking page"
	case sc.Verdict.Flagged():
		return fmt.Sprintf("the site check saw a %s page but no capture keeps it yet (run 'helpwatch work --kinds capture')", sc.Verdict)
	default:
		return fmt.Sprintf("no abuse seen: the site showed a %s page", sc.Verdict)
	}
}

// Prepare drafts a report per destination for every case with observed abuse (or a scam
// label) not reported there before, writes each to the outbox, records it, and lists in the
// outbox the cases that are not reportable yet and the destinations without a contact.
func Prepare(ctx context.Context, src Source, rep *Reporter, opts PrepareOptions) (*Prepared, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now().UTC()
	}
	if len(opts.Destinations) == 0 {
		opts.Destinations = AllDestinations
	}
	if opts.Actor == "" {
		opts.Actor = "helpwatch"
	}
	if err := os.MkdirAll(opts.Outbox, 0o755); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	found, err := src.Cases(ctx, store.Query{Since: opts.Since})
	if err != nil {
		return nil, err
	}
	done, err := src.ReportedDestinations(ctx)
	if err != nil {
		return nil, err
	}
	out := &Prepared{}
	for i := range found {
		c := &found[i]
		var todo []string
		for _, d := range opts.Destinations {
			if !done[c.Registrable][d] {
				todo = append(todo, d)
			}
		}
		if len(todo) == 0 {
			continue
		}
		if c.Label != nil {
			if decided, _, held := c.Label.Label.Decides(); decided && held != "" {
				out.Held = append(out.Held, Unreportable{Domain: c.Registrable, Reason: held})
				continue
			} else if decided && c.Label.Label != rules.LabelScam {
				continue
			}
		}
		ev := &Evidence{Case: c}
		if c.Label != nil && c.Label.Label == rules.LabelScam {
			ev.Label = c.Label
		}
		capture, ok, err := src.LatestObservedCapture(ctx, c.ID)
		if err != nil {
			return out, err
		}
		if ok {
			ev.Capture, ev.Shot = capture, capture.FlaggedShot()
		}
		if !ev.Observed() && ev.Label == nil {
			if c.Verdict().Rank() >= rules.VerdictWatch.Rank() {
				out.NotYet = append(out.NotYet, Unreportable{Domain: c.Registrable, Reason: notYet(c)})
			}
			continue
		}
		arts := map[string]*store.Artefact{}
		ev.Artefact = func(sha string) *store.Artefact {
			if sha == "" {
				return nil
			}
			if a, ok := arts[sha]; ok {
				return a
			}
			a, ok, err := src.Artefact(ctx, sha)
			if err != nil || !ok {
				a = nil
			}
			arts[sha] = a
			return a
		}
		for _, dest := range todo {
			draft, why, err := draftFor(dest, rep, ev, opts)
			if err != nil {
				return out, err
			}
			if why != "" {
				out.Unreportable = append(out.Unreportable, Unreportable{Domain: c.Registrable, Destination: dest, Reason: why})
				continue
			}
			file := filepath.Join(opts.Outbox, fmt.Sprintf("%s-%s-%s-%s%s", opts.Now.Format("20060102"), slug(c.Registrable, ""), dest, draft.shortID, draft.ext))
			if err := writeFileAtomic(file, draft.raw); err != nil {
				return out, err
			}
			ar := &store.AbuseReport{MessageID: draft.messageID, CaseID: c.ID, Destination: dest, Kind: store.KindReport, Registrar: orUnknown(draft.desk),
				Recipient: draft.to, File: file, AbuseType: draft.abuseType, PreparedAt: opts.Now, Names: []string{c.Registrable}}
			if err := src.RecordAbuseReport(ctx, ar); err != nil {
				os.Remove(file) // not recorded: it must not be sent
				return out, err
			}
			out.Messages = append(out.Messages, ar)
			if opts.ApproveAbove > 0 && ev.Observed() && c.Score.Score >= opts.ApproveAbove && Delivered(dest) {
				note := fmt.Sprintf("approved at once: score %d >= %d and the capture shows a %s page", c.Score.Score, opts.ApproveAbove, ev.Capture.Verdict)
				if err := src.SetReportState(ctx, ar.ID, store.ReportApproved, opts.Actor, note, opts.Now, true); err != nil {
					return out, err
				}
				ar.State = store.ReportApproved
				out.Approved = append(out.Approved, ar)
			}
		}
	}
	if len(out.NotYet)+len(out.Unreportable) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "Not reported on %s\n\n", opts.Now.Format(time.RFC3339))
		if len(out.NotYet) > 0 {
			b.WriteString("Not reportable yet (no observed abuse):\n")
			for _, u := range out.NotYet {
				fmt.Fprintf(&b, "%s\t%s\n", output.Printable(u.Domain), output.Printable(u.Reason))
			}
			b.WriteString("\n")
		}
		if len(out.Unreportable) > 0 {
			b.WriteString("Reportable, but not to this destination:\n")
			for _, u := range out.Unreportable {
				fmt.Fprintf(&b, "%s\t%s\t%s\n", output.Printable(u.Domain), u.Destination, output.Printable(u.Reason))
			}
		}
		out.ListFile = filepath.Join(opts.Outbox, "not-reported-"+opts.Now.Format("20060102-150405")+".txt")
		if err := writeFileAtomic(out.ListFile, []byte(b.String())); err != nil {
			return out, err
		}
	}
	return out, nil
}

// Delivered says helpwatch delivers reports to dest itself (a Safe Browsing packet and an
// ICANN complaint are submitted by hand through their web forms).
func Delivered(dest string) bool {
	return dest == store.DestRegistrar || dest == store.DestHosting || dest == store.DestNetcraft
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

func slug(registrar, email string) string {
	s := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(registrar), "-"), "-")
	if s == "" {
		s = strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(email), "-"), "-")
	}
	if len(s) > 40 {
		s = s[:40]
	}
	return s
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "unknown"
	}
	return s
}

// oneLine makes outside text safe for a header or a body line: no control characters, no line
// breaks (a hostile registrar name must not add headers or fake lines), bounded length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(output.Printable(s)), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
