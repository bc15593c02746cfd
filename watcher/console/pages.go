package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
)

var funcs = template.FuncMap{
	"when":  formatWhen,
	"crtsh": crtshLink,
	"join":  strings.Join,
	"list":  func(v ...string) []string { return v },
}

// formatWhen is a time as the console shows it: UTC to the minute, "—" when unknown.
func formatWhen(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// crtshLink is crt.sh's page of a certificate. Only a hex digest becomes a link: the
// fingerprint came from a log entry. crt.sh finds a certificate by its SHA-256, or by its SHA-1
// (certstream's fingerprint).
func crtshLink(fingerprint string) string {
	fp := strings.ToLower(strings.ReplaceAll(fingerprint, ":", ""))
	switch {
	case sha256Hex.MatchString(fp):
		return "https://crt.sh/?sha256=" + fp
	case sha1Hex.MatchString(fp):
		return "https://crt.sh/?q=" + fp
	}
	return ""
}

var (
	sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)
	sha1Hex   = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// queueFilters are the queue's filters, read from the query string; the values are checked
// against what the store knows so that a page never echoes arbitrary input into a query.
func queueQuery(q url.Values) (store.QueueQuery, error) {
	qq := store.QueueQuery{ByScore: q.Get("order") == "score", Brand: q.Get("brand"), After: q.Get("after"),
		Campaign: q.Get("campaign"), Limit: 50}
	if kind, value, ok := strings.Cut(qq.Campaign, ":"); qq.Campaign != "" && (!ok || value == "" || !slices.Contains([]string{"phone", "chat", "kit", "page"}, kind)) {
		return qq, fmt.Errorf("campaign %q: want phone:, chat:, kit: or page: and a value (the campaigns page links them)", qq.Campaign)
	}
	if v := q.Get("verdict"); v != "" {
		if !slices.Contains([]string{"alert", "watch", "ignore", "invalid"}, v) {
			return qq, fmt.Errorf("verdict %q: want alert, watch, ignore or invalid", v)
		}
		qq.Verdict = rules.Verdict(v)
	}
	if v := q.Get("label"); v != "" {
		if !slices.Contains([]string{"none", "scam", "benign", "unsure"}, v) {
			return qq, fmt.Errorf("label %q: want none, scam, benign or unsure", v)
		}
		qq.Label = v
	}
	if v := q.Get("site"); v != "" {
		if !slices.Contains(siteVerdicts, v) {
			return qq, fmt.Errorf("site verdict %q: want one of %s", v, strings.Join(siteVerdicts, ", "))
		}
		qq.SiteVerdict = v
	}
	if v := q.Get("takedown"); v != "" {
		if !slices.Contains(takedownStates, v) {
			return qq, fmt.Errorf("takedown %q: want one of %s", v, strings.Join(takedownStates, ", "))
		}
		qq.Takedown = v
	}
	for k, dst := range map[string]*time.Time{"since": &qq.Since, "until": &qq.Until} {
		if v := q.Get(k); v != "" {
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				return qq, fmt.Errorf("%s %q: want a date as 2026-12-05", k, v)
			}
			*dst = t
		}
	}
	return qq, nil
}

var (
	siteVerdicts   = []string{"none", "clone", "helpline", "parked", "benign", "unreachable"}
	takedownStates = []string{"none", store.ReportDrafted, store.ReportApproved, store.ReportSent, store.ReportAcknowledged,
		store.ReportNoAnswer, store.ReportRefused, store.ReportActioned}
)

func (s *Server) queue(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	qq, err := queueQuery(q)
	data := map[string]any{"Title": "Queue", "Q": q, "SiteVerdicts": siteVerdicts, "Takedowns": takedownStates}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		data["Error"] = err.Error()
		s.render(w, r, "queue", data)
		return
	}
	page, err := s.Store.Queue(r.Context(), qq)
	if errors.Is(err, store.ErrBadCursor) {
		w.WriteHeader(http.StatusBadRequest)
		data["Error"] = "that page link is not valid any more: start from the first page"
		s.render(w, r, "queue", data)
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	brands, err := s.Store.Brands(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	data["Page"], data["Brands"] = page, brands
	if page.Next != "" {
		n := url.Values{}
		for k, v := range q {
			n[k] = v
		}
		n.Set("after", page.Next)
		data["NextURL"] = "?" + n.Encode()
	}
	s.render(w, r, "queue", data)
}

func (s *Server) caseID(w http.ResponseWriter, r *http.Request) (*watcher.Case, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "not a case number", http.StatusBadRequest)
		return nil, false
	}
	c, ok, err := s.Store.CaseByID(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	if !ok {
		http.Error(w, fmt.Sprintf("case %d does not exist", id), http.StatusNotFound)
		return nil, false
	}
	return c, true
}

// Event is one step of a case's timeline, with who took it.
type Event struct {
	At    time.Time
	What  string
	Who   string
	Notes string
}

// ReportView is an abuse report with its steps.
type ReportView struct {
	*store.AbuseReport
	Events []store.ReportEvent
}

// Share is something the case's sites showed (kind:value) and the other cases that showed it.
type Share struct {
	What   string
	Others []string
}

// CaseView is everything known of one case, as the case page and 'helpwatch show' give it.
type CaseView struct {
	Case     *watcher.Case
	Total    int // the points before the cap at 100
	Captures []watcher.Capture
	Shared   []Share
	Reports  []ReportView
	Timeline []Event
}

// Gather reads a case's evidence, reports and history from the store.
func Gather(ctx context.Context, st Store, c *watcher.Case) (*CaseView, error) {
	v := &CaseView{Case: c, Total: total(c.Score.Reasons)}
	var err error
	if v.Captures, err = st.Captures(ctx, c.ID); err != nil {
		return nil, err
	}
	shared, err := st.SharedWith(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	labels, err := st.LabelHistory(ctx, c.Registrable)
	if err != nil {
		return nil, err
	}
	reports, err := st.AbuseReports(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	audit, err := st.AuditLog(ctx, caseTarget(c), 50)
	if err != nil {
		return nil, err
	}
	v.Timeline = []Event{{At: c.CTSeen, What: "first certificate in CT"}, {At: c.FirstSeen, What: "read by helpwatch"}}
	if c.Enrichment != nil {
		v.Timeline = append(v.Timeline, Event{At: c.Enrichment.At, What: "enriched"})
	}
	for _, site := range c.Sites {
		v.Timeline = append(v.Timeline, Event{At: site.At, What: "site checked: " + site.Name + " " + string(site.Verdict)})
	}
	for _, cp := range v.Captures {
		v.Timeline = append(v.Timeline, Event{At: cp.At, What: "captured: " + string(cp.Verdict)})
	}
	for _, l := range labels {
		v.Timeline = append(v.Timeline, Event{At: l.At, What: "labelled " + string(l.Label), Who: l.By, Notes: l.Note})
	}
	for _, rep := range reports {
		ev, err := st.ReportEvents(ctx, rep.ID)
		if err != nil {
			return nil, err
		}
		v.Reports = append(v.Reports, ReportView{rep, ev})
		for _, e := range ev {
			v.Timeline = append(v.Timeline, Event{At: e.At, What: fmt.Sprintf("report #%d to %s %s: %s", rep.ID, rep.Destination, rep.Registrar, e.State),
				Who: e.Actor, Notes: e.Note})
		}
	}
	for _, a := range audit {
		if a.Action == "recheck" {
			v.Timeline = append(v.Timeline, Event{At: a.At, What: "site re-check asked", Who: a.Actor})
		}
	}
	slices.SortStableFunc(v.Timeline, func(a, b Event) int { return a.At.Compare(b.At) })
	keys := make([]string, 0, len(shared))
	for k := range shared {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v.Shared = append(v.Shared, Share{k, shared[k]})
	}
	return v, nil
}

func (s *Server) casePage(w http.ResponseWriter, r *http.Request) {
	c, ok := s.caseID(w, r)
	if !ok {
		return
	}
	v, err := Gather(r.Context(), s.Store, c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "case", map[string]any{"Title": c.Registrable, "Case": c, "Captures": v.Captures, "Shared": v.Shared,
		"Timeline": v.Timeline, "Reports": v.Reports, "CanAct": store.RoleRank(userOf(r).Role) >= store.RoleRank(store.RoleAnalyst),
		"Total": v.Total})
}

// total is the sum of a result's points, which the score caps at 100.
func total(reasons []rules.Reason) int {
	n := 0
	for _, r := range reasons {
		n += r.Points
	}
	return n
}

func caseTarget(c *watcher.Case) string { return "case:" + c.Registrable }

// artefact serves a captured screenshot. Only images: a captured page is never served, so
// nothing an attacker wrote runs in the console's origin.
func (s *Server) artefact(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	if !sha256Hex.MatchString(sha) {
		http.Error(w, "not an artefact name", http.StatusBadRequest)
		return
	}
	a, ok, err := s.Store.Artefact(r.Context(), sha)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok || a.MediaType != "image/png" {
		http.Error(w, "no such screenshot", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Content-Disposition", "inline; filename=\""+sha+".png\"")
	w.Header().Set("Cache-Control", "private, max-age=86400, immutable")
	w.Write(a.Data)
}

// act records a change made through the console in the audit log and returns to the case.
func (s *Server) act(w http.ResponseWriter, r *http.Request, c *watcher.Case, action, detail string) {
	u := userOf(r)
	if err := s.Store.Audit(r.Context(), store.AuditEntry{At: s.now(), Actor: u.Name, Action: action, Target: caseTarget(c),
		Detail: detail, Address: s.clientAddr(r)}); err != nil {
		s.fail(w, r, err)
		return
	}
	s.Log.Info("console: "+action, "user", u.Name, "case", c.Registrable, "detail", detail)
	http.Redirect(w, r, fmt.Sprintf("/case/%d", c.ID), http.StatusSeeOther)
}

func (s *Server) label(w http.ResponseWriter, r *http.Request) {
	c, ok := s.caseID(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	l := rules.Label(r.PostFormValue("label"))
	if l != rules.LabelScam && l != rules.LabelBenign && l != rules.LabelUnsure {
		http.Error(w, "label must be scam, benign or unsure", http.StatusBadRequest)
		return
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	if len(note) > 2000 {
		http.Error(w, "the note is longer than 2000 characters", http.StatusBadRequest)
		return
	}
	u := userOf(r)
	if err := s.Store.AddLabel(r.Context(), store.Label{Registrable: c.Registrable, Label: l, Note: note, By: u.Name, At: s.now()}); err != nil {
		s.fail(w, r, err)
		return
	}
	if l == rules.LabelBenign {
		// A case an analyst calls benign is not reported: its drafts, and approved reports not
		// yet sent, are withdrawn (abuse prepare obeys the label from now on).
		reports, err := s.Store.AbuseReports(r.Context(), c.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, rep := range reports {
			if rep.State != store.ReportDrafted && rep.State != store.ReportApproved {
				continue
			}
			err := s.Store.SetReportState(r.Context(), rep.ID, store.ReportWithdrawn, u.Name, "labelled benign", s.now(), false)
			if err != nil && !errors.Is(err, store.ErrReportState) {
				s.fail(w, r, err)
				return
			}
		}
	}
	s.act(w, r, c, "label", string(l)+": "+note)
}

func (s *Server) recheck(w http.ResponseWriter, r *http.Request) {
	c, ok := s.caseID(w, r)
	if !ok {
		return
	}
	if err := s.Store.RequestSiteCheck(r.Context(), c.ID); err != nil {
		s.fail(w, r, err)
		return
	}
	s.act(w, r, c, "recheck", "site check due now")
}

// reportAction approves a draft (queued for delivery) or holds it (withdrawn: nothing is sent).
func (s *Server) reportAction(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "not a report number", http.StatusBadRequest)
		return
	}
	rep, ok, err := s.Store.AbuseReportByID(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !ok {
		http.Error(w, fmt.Sprintf("report %d does not exist", id), http.StatusNotFound)
		return
	}
	c, ok, err := s.Store.CaseByID(r.Context(), rep.CaseID)
	if err != nil || !ok {
		s.fail(w, r, cmp.Or(err, fmt.Errorf("report %d names case %d, which does not exist", id, rep.CaseID)))
		return
	}
	state := map[string]string{"approve": store.ReportApproved, "hold": store.ReportWithdrawn}[r.PathValue("action")]
	if state == "" {
		http.Error(w, "the actions on a report are approve and hold", http.StatusNotFound)
		return
	}
	deliver := s.Deliverable == nil || s.Deliverable(rep.Destination)
	u := userOf(r)
	if err := s.Store.SetReportState(r.Context(), id, state, u.Name, "in the console", s.now(), deliver); err != nil {
		if errors.Is(err, store.ErrReportState) {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		s.fail(w, r, err)
		return
	}
	s.act(w, r, c, r.PathValue("action"), fmt.Sprintf("report #%d to %s", id, rep.Destination))
}

func (s *Server) campaigns(w http.ResponseWriter, r *http.Request) {
	cs, err := s.Store.Campaigns(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "campaigns", map[string]any{"Title": "Campaigns", "Campaigns": cs})
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	logs, err := s.Store.LogPositions(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	now := s.now()
	stats, err := s.Store.JobStats(r.Context(), now)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	type logView struct {
		watcher.LogPosition
		Lag string
	}
	var lv []logView
	for _, l := range logs {
		lag := "—"
		if !l.TreeTime.IsZero() {
			lag = now.Sub(l.TreeTime).Round(time.Second).String()
		}
		lv = append(lv, logView{l, lag})
	}
	problems, err := s.Store.JobProblems(r.Context(), 50)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, "status", map[string]any{"Title": "Status", "Logs": lv, "Jobs": stats, "Problems": problems, "Now": now})
}
