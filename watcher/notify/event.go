package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/abuse"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Event is what happened, as every channel's message is made from it (and as a webhook's
// body carries it).
type Event struct {
	// ID names the event whatever the channel: the same event found again has the same ID.
	ID      string    `json:"id"`
	Kind    string    `json:"event"`
	At      time.Time `json:"at"`
	Summary string    `json:"summary"`
	Case    *CaseInfo `json:"case,omitempty"`
	Log     *LogInfo  `json:"log,omitempty"`
}

// CaseInfo is the case an event is about, with links to its evidence.
type CaseInfo struct {
	Domain   string `json:"domain"`
	Defanged string `json:"defanged"`
	Brand    string `json:"brand,omitempty"`
	Verdict  string `json:"verdict"`
	Score    int    `json:"score"`
	// Points are the reasons' points before the cap at 100.
	Points int `json:"points"`
	// Why lists the reasons as "+points: detail".
	Why         []string  `json:"why"`
	SiteVerdict string    `json:"site_verdict,omitempty"`
	Names       []string  `json:"names"`
	FirstSeenCT time.Time `json:"first_seen_ct,omitzero"`
	Registrar   string    `json:"registrar,omitempty"`
	Registered  string    `json:"registered,omitempty"`
	// Takedown is the takedown state (taken_down and back_up events).
	Takedown string `json:"takedown,omitempty"`
	// Certificate is the case's first certificate on crt.sh; ConsoleURL its page in the
	// console (when console_url is set); Screenshots the console links of the latest
	// capture's screenshots.
	Certificate string   `json:"certificate,omitempty"`
	ConsoleURL  string   `json:"console_url,omitempty"`
	Screenshots []string `json:"screenshots,omitempty"`
}

// LogInfo is the CT log a log event is about.
type LogInfo struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	LagS      int64  `json:"lag_s"`
	Failures  int64  `json:"verification_failures"`
	LastError string `json:"last_error,omitempty"`
}

// caseInfo describes c for a message. Every outside string is cleaned; channels escape what
// their format needs.
func caseInfo(c *watcher.Case, consoleURL string, captures []watcher.Capture) *CaseInfo {
	info := &CaseInfo{Domain: c.Registrable, Defanged: abuse.Defang(c.Registrable), Brand: c.Brand, Verdict: string(c.Score.Verdict),
		Score: c.Score.Score, Points: c.Score.Points(), FirstSeenCT: c.CTSeen.UTC()}
	for _, r := range c.Score.Reasons {
		info.Why = append(info.Why, fmt.Sprintf("%+d: %s", r.Points, output.Printable(r.Detail)))
	}
	for _, n := range c.Names {
		info.Names = append(info.Names, n.Name)
	}
	f := output.FactsOf(c)
	if f.Site != "-" {
		info.SiteVerdict = f.Site
	}
	if f.Registrar != "-" {
		info.Registrar = output.Printable(f.Registrar)
	}
	if f.Registered != "-" {
		info.Registered = f.Registered
	}
	if fp := strings.ToLower(strings.ReplaceAll(c.Cert.Fingerprint, ":", "")); len(fp) == 64 {
		info.Certificate = "https://crt.sh/?sha256=" + fp
	} else if len(fp) == 40 {
		info.Certificate = "https://crt.sh/?q=" + fp
	}
	if consoleURL != "" && c.ID > 0 {
		info.ConsoleURL = consoleURL + "/case/" + strconv.FormatInt(c.ID, 10)
		if len(captures) > 0 {
			for _, s := range captures[0].Shots {
				if s.Screenshot != "" {
					info.Screenshots = append(info.Screenshots, consoleURL+"/artefact/"+s.Screenshot)
				}
			}
		}
	}
	return info
}

// ScanStore is what the Scanner reads and writes.
type ScanStore interface {
	NotifyCursor(ctx context.Context, source string) (int64, bool, error)
	AddNotifications(ctx context.Context, at time.Time, source string, position int64, ns []store.Notification) ([]store.Notification, error)
	MaxIDs(ctx context.Context) (cases, siteChecks, takedownMillis int64, err error)
	CasesAfter(ctx context.Context, afterID int64, limit int) ([]watcher.Case, error)
	CaseByID(ctx context.Context, id int64) (*watcher.Case, bool, error)
	SiteChecksAfter(ctx context.Context, afterID int64, limit int) ([]store.SiteCheckEvent, error)
	TakedownsAfter(ctx context.Context, afterMillis int64, limit int) ([]store.TakedownEvent, error)
	Captures(ctx context.Context, caseID int64) ([]watcher.Capture, error)
	OldestDigestWaiting(ctx context.Context, channel string) (time.Time, bool, error)
	MakeDigest(ctx context.Context, at time.Time, channel, key string, end time.Time) (*store.Notification, error)
}

// Scanner finds events in the store and stores a notification per channel a trigger sends
// each to. Scans may run in several processes at once: the store keeps each (channel, event)
// once.
type Scanner struct {
	Store  ScanStore
	Config *Config
	// Logs is the CT source's view of its logs (nil where no CT source runs: log events are
	// then not looked for).
	Logs func() []watcher.LogStatus
	Now  func() time.Time
	// Settle is how long rows stay within reach of the next scan (default 1 minute): a row
	// committed late with a lower id than one already seen (PostgreSQL's sequences) is still
	// found.
	Settle time.Duration
	// Added is told of each new notification.
	Added func(n store.Notification)

	started  time.Time
	failures map[string]int64 // verification failures per log at the last scan
}

const scanBatch = 500

func (s *Scanner) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Run scans every interval until ctx ends. A scan that fails is told to failed and done again
// at the next tick (a scan's cursors move only with what it stored).
func (s *Scanner) Run(ctx context.Context, every time.Duration, failed func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.Scan(ctx); err != nil && ctx.Err() == nil && failed != nil {
			failed(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Scan looks once for new events of every source and makes the digests that are due.
func (s *Scanner) Scan(ctx context.Context) error {
	if s.started.IsZero() {
		s.started = s.now()
	}
	if err := s.startCursors(ctx); err != nil {
		return err
	}
	for _, step := range []func(context.Context) error{s.scanCases, s.scanSiteChecks, s.scanTakedowns, s.scanLogs, s.makeDigests} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// startCursors starts each source's scan where the store is now, the first time: events
// from before notifications were set up are not sent.
func (s *Scanner) startCursors(ctx context.Context) error {
	_, ok, err := s.Store.NotifyCursor(ctx, "cases")
	if err != nil || ok {
		return err
	}
	cases, checks, down, err := s.Store.MaxIDs(ctx)
	if err != nil {
		return err
	}
	for source, pos := range map[string]int64{"cases": cases, "site_checks": checks, "takedowns": down} {
		if _, err := s.Store.AddNotifications(ctx, s.now(), source, pos, nil); err != nil {
			return err
		}
	}
	return nil
}

func (s *Scanner) settle() time.Duration {
	if s.Settle > 0 {
		return s.Settle
	}
	return time.Minute
}

// notifications turns an event into one notification per channel its triggers name.
func (s *Scanner) notifications(e *Event, caseID int64) ([]store.Notification, error) {
	payload, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	var out []store.Notification
	seen := map[string]bool{}
	for i := range s.Config.Triggers {
		t := &s.Config.Triggers[i]
		if !t.matches(e) {
			continue
		}
		for _, name := range t.Channels {
			if seen[name] {
				continue
			}
			seen[name] = true
			n := store.Notification{Channel: name, Event: e.Kind, Key: e.ID, CaseID: caseID, Payload: payload}
			if ch, ok := s.Config.Channel(name); ok && ch.Digest() {
				n.State = store.NotifyDigest
			}
			out = append(out, n)
		}
	}
	return out, nil
}

// cursor moves a scan's position over the rows it read, in order, up to the first row that
// has not settled yet: later scans read that one and those after it again.
type cursor struct {
	s       *Scanner
	next    int64
	settled bool
}

func (s *Scanner) cursorAt(pos int64) *cursor { return &cursor{s: s, next: pos, settled: true} }

// read notes a row at position pos made at at.
func (c *cursor) read(pos int64, at time.Time) {
	if c.settled && c.s.now().Sub(at) >= c.s.settle() {
		c.next = pos
	} else {
		c.settled = false
	}
}

// batch collects the notifications of one scan.
type batch struct {
	s  *Scanner
	ns []store.Notification
}

func (b *batch) event(e *Event, caseID int64) error {
	more, err := b.s.notifications(e, caseID)
	b.ns = append(b.ns, more...)
	return err
}

func (s *Scanner) add(ctx context.Context, source string, position int64, ns []store.Notification) error {
	added, err := s.Store.AddNotifications(ctx, s.now(), source, position, ns)
	if err != nil {
		return err
	}
	if s.Added != nil {
		for _, n := range added {
			s.Added(n)
		}
	}
	return nil
}

// wanted reports whether any trigger sends events of kind about c: the evidence links (a
// query of the case's captures) are read only for those.
func (s *Scanner) wanted(kind string, c *watcher.Case) bool {
	probe := &Event{Kind: kind, Case: &CaseInfo{Verdict: string(c.Score.Verdict), Score: c.Score.Score, Brand: c.Brand}}
	for i := range s.Config.Triggers {
		if s.Config.Triggers[i].matches(probe) {
			return true
		}
	}
	return false
}

func (s *Scanner) caseEvent(ctx context.Context, c *watcher.Case, kind, id, summary string, at time.Time) (*Event, error) {
	caps, err := s.Store.Captures(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	return &Event{ID: id, Kind: kind, At: at.UTC(), Summary: summary, Case: caseInfo(c, s.Config.ConsoleURL, caps)}, nil
}

// scanCases: each new case is a new_case event, judged on its score when it is scanned.
func (s *Scanner) scanCases(ctx context.Context) error {
	pos, _, err := s.Store.NotifyCursor(ctx, "cases")
	if err != nil {
		return err
	}
	cases, err := s.Store.CasesAfter(ctx, pos, scanBatch)
	if err != nil {
		return err
	}
	b, cur := &batch{s: s}, s.cursorAt(pos)
	for i := range cases {
		c := &cases[i]
		cur.read(c.ID, c.FirstSeen)
		if c.Score.Verdict.Rank() < 1 || !s.wanted(NewCase, c) { // ignore and invalid: not a case anyone is told of
			continue
		}
		brand := c.Brand
		if brand == "" {
			brand = "no brand"
		}
		e, err := s.caseEvent(ctx, c, NewCase, NewCase+":"+c.Registrable,
			fmt.Sprintf("new %s case %s (%s, score %d)", c.Score.Verdict, abuse.Defang(c.Registrable), brand, c.Score.Score), c.CTSeen)
		if err != nil {
			return err
		}
		if err := b.event(e, c.ID); err != nil {
			return err
		}
	}
	return s.add(ctx, "cases", cur.next, b.ns)
}

// scanSiteChecks: a check judging a clone or helpline page confirms the case (once), or, after
// a takedown, says it is back up (once per takedown).
func (s *Scanner) scanSiteChecks(ctx context.Context) error {
	pos, _, err := s.Store.NotifyCursor(ctx, "site_checks")
	if err != nil {
		return err
	}
	checks, err := s.Store.SiteChecksAfter(ctx, pos, scanBatch)
	if err != nil {
		return err
	}
	b, cur := &batch{s: s}, s.cursorAt(pos)
	for _, sc := range checks {
		cur.read(sc.ID, sc.CheckedAt)
		if (sc.Verdict != "clone" && sc.Verdict != "helpline") || sc.CaseID == 0 {
			continue
		}
		c, ok, err := s.Store.CaseByID(ctx, sc.CaseID)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		kind, id := SiteConfirmed, SiteConfirmed+":"+c.Registrable
		if !sc.DownBefore.IsZero() {
			kind = BackUp
		}
		if !s.wanted(kind, c) {
			continue
		}
		summary := fmt.Sprintf("%s shows a %s page", abuse.Defang(sc.Name), sc.Verdict)
		if kind == BackUp {
			id = BackUp + ":" + c.Registrable + ":" + strconv.FormatInt(sc.DownBefore.UnixMilli(), 10)
			summary = fmt.Sprintf("%s is back up: a %s page again after its takedown on %s", abuse.Defang(sc.Name), sc.Verdict,
				sc.DownBefore.UTC().Format("2006-01-02 15:04 UTC"))
		}
		e, err := s.caseEvent(ctx, c, kind, id, summary, sc.CheckedAt)
		if err != nil {
			return err
		}
		e.Case.SiteVerdict = sc.Verdict
		if err := b.event(e, c.ID); err != nil {
			return err
		}
	}
	return s.add(ctx, "site_checks", cur.next, b.ns)
}

// scanTakedowns: each reported name seen gone is a taken_down event.
func (s *Scanner) scanTakedowns(ctx context.Context) error {
	pos, _, err := s.Store.NotifyCursor(ctx, "takedowns")
	if err != nil {
		return err
	}
	downs, err := s.Store.TakedownsAfter(ctx, pos, scanBatch)
	if err != nil {
		return err
	}
	b, cur := &batch{s: s}, s.cursorAt(pos)
	for _, d := range downs {
		cur.read(d.At.UnixMilli(), d.At)
		c, ok, err := s.Store.CaseByID(ctx, d.CaseID)
		if err != nil {
			return err
		}
		if !ok || !s.wanted(TakenDown, c) {
			continue
		}
		e, err := s.caseEvent(ctx, c, TakenDown, TakenDown+":"+d.Name+":"+strconv.FormatInt(d.At.UnixMilli(), 10),
			fmt.Sprintf("%s is taken down (%s)", abuse.Defang(d.Name), d.State), d.At)
		if err != nil {
			return err
		}
		e.Case.Takedown = d.State
		if err := b.event(e, c.ID); err != nil {
			return err
		}
	}
	return s.add(ctx, "takedowns", cur.next, b.ns)
}

// scanLogs: a followed log lagging past the limit, or whose answers failed verification since
// the last scan, is an event at most once an hour per log.
func (s *Scanner) scanLogs(ctx context.Context) error {
	if s.Logs == nil {
		return nil
	}
	now := s.now()
	hour := now.Truncate(time.Hour).Format("2006-01-02T15")
	if s.failures == nil {
		s.failures = map[string]int64{}
	}
	b := &batch{s: s}
	for _, l := range s.Logs() {
		if !l.Followed {
			continue
		}
		info := &LogInfo{Name: output.Printable(l.Name), URL: output.Printable(l.URL), LagS: int64(l.Lag(now, s.started) / time.Second),
			Failures: l.VerifyFailures, LastError: output.Printable(watcher.Clean(l.LastError, 300))}
		var events []*Event
		if lag := l.Lag(now, s.started); lag > s.Config.LogLagLimit {
			events = append(events, &Event{ID: LogLagging + ":" + l.URL + ":" + hour, Kind: LogLagging, At: now, Log: info,
				Summary: fmt.Sprintf("CT log %s lags %s (limit %s)", info.Name, lag.Round(time.Second), s.Config.LogLagLimit)})
		}
		if before, seen := s.failures[l.URL]; seen && l.VerifyFailures > before {
			events = append(events, &Event{ID: LogRefused + ":" + l.URL + ":" + hour, Kind: LogRefused, At: now, Log: info,
				Summary: fmt.Sprintf("CT log %s: %d answers failed verification since the last look", info.Name, l.VerifyFailures-before)})
		}
		s.failures[l.URL] = l.VerifyFailures
		for _, e := range events {
			if err := b.event(e, 0); err != nil {
				return err
			}
		}
	}
	if len(b.ns) == 0 {
		return nil
	}
	return s.add(ctx, "", 0, b.ns)
}

// makeDigests gathers, for each digest channel, what waited through a finished period.
func (s *Scanner) makeDigests(ctx context.Context) error {
	now := s.now()
	for i := range s.Config.Channels {
		ch := &s.Config.Channels[i]
		if !ch.Digest() {
			continue
		}
		oldest, ok, err := s.Store.OldestDigestWaiting(ctx, ch.Name)
		if err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		end := now.Truncate(ch.Period())
		if !oldest.Before(end) {
			continue // the period it belongs to is not over
		}
		made, err := s.Store.MakeDigest(ctx, now, ch.Name, "digest:"+end.Format(time.RFC3339), end)
		if err != nil {
			return err
		}
		if made != nil && s.Added != nil {
			s.Added(*made)
		}
	}
	return nil
}

// TestEvent is a made-up event for `notify test`: it says so in its summary.
func TestEvent(consoleURL string, now time.Time) Event {
	c := &CaseInfo{Domain: "example.com", Defanged: abuse.Defang("example.com"), Brand: "HP", Verdict: "alert", Score: 100, Points: 120,
		Why: []string{"+30: a test event from helpwatch notify test"}, SiteVerdict: "helpline", Names: []string{"example.com"}, FirstSeenCT: now.UTC()}
	if consoleURL != "" {
		c.ConsoleURL = consoleURL + "/"
	}
	return Event{ID: "test:" + now.UTC().Format(time.RFC3339Nano), Kind: NewCase, At: now.UTC(), Case: c,
		Summary: "test event from helpwatch (nothing happened): new alert case " + c.Defanged}
}
