package notify

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/internal/fixture"
	"github.com/helpwatch/helpwatch/watcher/netguard"
	"github.com/helpwatch/helpwatch/watcher/queue"
	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/testkit"
)

const fixtureStream = "../../testdata/report_fixture.jsonl"

const secret = "a webhook secret of some length"

// receiver is a local endpoint that keeps every request; fail answers 500 to the first N.
type receiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  []request
	fail int
}

type request struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail > 0 {
			r.fail--
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		r.got = append(r.got, request{req.Header.Clone(), body})
		io.WriteString(w, "ok")
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

func (r *receiver) host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// world is a filled store, its clock, and the channels' receivers let through the guard.
type world struct {
	db    *store.SQL
	clock *clock
	guard *netguard.Guard
}

func newWorld(t *testing.T, receivers ...*receiver) *world {
	t.Helper()
	db, _ := fixture.FilledStore(t, fixtureStream)
	w := &world{db: db, clock: &clock{now: fixture.Enriched.Add(time.Hour)}, guard: &netguard.Guard{}}
	for _, r := range receivers {
		if err := w.guard.AllowHost(r.host()); err != nil {
			t.Fatal(err)
		}
	}
	// The scans start at the beginning: the fixture's cases are new to them.
	for _, source := range []string{"cases", "site_checks", "takedowns"} {
		if _, err := db.AddNotifications(context.Background(), w.clock.Now(), source, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *world) config(t *testing.T, yaml string) *Config {
	t.Helper()
	cfg, err := Parse("notify.yaml", []byte(yaml), func(k string) string {
		if k == "HOOK_SECRET" {
			return secret
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (w *world) scan(t *testing.T, cfg *Config) {
	t.Helper()
	if err := (&Scanner{Store: w.db, Config: cfg, Now: w.clock.Now}).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// drain delivers what is due; it returns the runner's counters of the notify kind.
func (w *world) drain(t *testing.T, cfg *Config) *queue.Counters {
	t.Helper()
	chans := map[string]Channel{}
	for i := range cfg.Channels {
		chans[cfg.Channels[i].Name] = NewChannel(&cfg.Channels[i], w.guard.HTTPClient(5*time.Second, 0))
	}
	sender := &Sender{Store: w.db, Channels: chans, Config: cfg, Now: w.clock.Now}
	r := &queue.Runner{Store: w.db, Drain: true, Log: testkit.Quiet(), Now: w.clock.Now, Kinds: []queue.Kind{sender.Kind(1)}}
	if err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return r.Counters("notify")
}

func alertCases(t *testing.T, db *store.SQL) map[string]bool {
	t.Helper()
	cs, err := db.CasesAfter(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, c := range cs {
		if c.Score.Verdict == "alert" {
			out[c.Registrable] = true
		}
	}
	if len(out) == 0 {
		t.Fatal("the fixture has no alert case")
	}
	return out
}

// Each new alert case reaches the webhook, Slack and Teams exactly once: signed, in each one's
// own format, defanged; scanning again, from a second scanner, and draining again sends nothing
// more.
func TestNewCasesReachEachChannelOnce(t *testing.T) {
	hook, slack, teams := newReceiver(t), newReceiver(t), newReceiver(t)
	w := newWorld(t, hook, slack, teams)
	cfg := w.config(t, `
console_url: https://console.example.org
channels:
  - {name: soc, type: webhook, url: "`+hook.srv.URL+`/in", secret_env: HOOK_SECRET}
  - {name: chat, type: slack, url: "`+slack.srv.URL+`/services/T/B/X"}
  - {name: room, type: teams, url: "`+teams.srv.URL+`/workflows/x"}
triggers:
  - events: [new_case]
    min_verdict: alert
    channels: [soc, chat, room]
`)
	want := alertCases(t, w.db)
	w.scan(t, cfg)
	w.drain(t, cfg)
	// Again, and from another scanner: the store already has each event for each channel.
	w.scan(t, cfg)
	w.scan(t, cfg)
	if c := w.drain(t, cfg); c.Done.Load() != 0 {
		t.Errorf("a second drain sent %d more", c.Done.Load())
	}

	got := map[string]int{}
	for _, req := range hook.requests() {
		ts, sig := req.header.Get("X-Helpwatch-Timestamp"), req.header.Get("X-Helpwatch-Signature")
		if !hmac.Equal([]byte(sig), []byte(Sign([]byte(secret), ts, req.body))) || ts == "" {
			t.Errorf("the signature does not verify: %q over %q", sig, ts)
		}
		if Sign([]byte("another secret entirely"), ts, req.body) == sig {
			t.Error("the signature does not depend on the secret")
		}
		var body WebhookBody
		if err := json.Unmarshal(req.body, &body); err != nil || body.Case == nil {
			t.Fatalf("webhook body %s: %v", req.body, err)
		}
		if body.Delivery != req.header.Get("X-Helpwatch-Delivery") || body.Kind != NewCase || body.Case.Verdict != "alert" {
			t.Errorf("webhook body: %+v", body)
		}
		if !strings.HasPrefix(body.Case.ConsoleURL, "https://console.example.org/case/") || len(body.Case.Why) == 0 ||
			body.Case.Defanged == body.Case.Domain || body.Case.Points < body.Case.Score {
			t.Errorf("webhook case: %+v", body.Case)
		}
		got[body.Case.Domain]++
	}
	if len(got) != len(want) {
		t.Errorf("webhook got %d cases, want the %d alert cases: %v", len(got), len(want), got)
	}
	for d, n := range got {
		if n != 1 || !want[d] {
			t.Errorf("webhook: %s %d times (alert: %v)", d, n, want[d])
		}
	}
	if n := len(slack.requests()); n != len(want) {
		t.Errorf("slack got %d posts, want %d", n, len(want))
	}
	for _, req := range slack.requests() {
		var m struct {
			Text   string            `json:"text"`
			Blocks []json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(req.body, &m); err != nil || len(m.Blocks) < 3 || !strings.Contains(m.Text, "[.]") {
			t.Errorf("slack message: %s (%v)", req.body, err)
		}
	}
	if n := len(teams.requests()); n != len(want) {
		t.Errorf("teams got %d posts, want %d", n, len(want))
	}
	for _, req := range teams.requests() {
		var m struct {
			Type        string `json:"type"`
			Attachments []struct {
				ContentType string `json:"contentType"`
				Content     struct {
					Type string            `json:"type"`
					Body []json.RawMessage `json:"body"`
				} `json:"content"`
			} `json:"attachments"`
		}
		if err := json.Unmarshal(req.body, &m); err != nil || m.Type != "message" || len(m.Attachments) != 1 ||
			m.Attachments[0].ContentType != "application/vnd.microsoft.card.adaptive" || m.Attachments[0].Content.Type != "AdaptiveCard" {
			t.Errorf("teams message: %s (%v)", req.body, err)
		}
	}
	ns, err := w.db.Notifications(context.Background(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.State != store.NotifySent || !strings.HasPrefix(n.Reply, "HTTP 200") {
			t.Errorf("notification %d %s: %s %q", n.ID, n.Channel, n.State, n.Reply)
		}
	}
}

// A receiver that answers 500 gets the event again after the backoff, once; one that never
// accepts leaves the notification failed, with its reason, for 'helpwatch jobs' and the console.
func TestFailedDeliveryRetriedThenFailedVisibly(t *testing.T) {
	flaky, down := newReceiver(t), newReceiver(t)
	flaky.fail, down.fail = 1, 1000
	w := newWorld(t, flaky, down)
	cfg := w.config(t, `
channels:
  - {name: flaky, type: webhook, url: "`+flaky.srv.URL+`", secret_env: HOOK_SECRET}
  - {name: down, type: slack, url: "`+down.srv.URL+`"}
triggers:
  - {events: [new_case], min_verdict: alert, brands: [HP], channels: [flaky, down]}
`)
	w.scan(t, cfg)
	first := w.drain(t, cfg)
	if first.Retried.Load() == 0 {
		t.Fatal("nothing was retried")
	}
	for range 10 {
		w.clock.add(time.Hour)
		w.drain(t, cfg)
	}
	reqs := flaky.requests()
	seen := map[string]int{}
	for _, r := range reqs {
		seen[r.header.Get("X-Helpwatch-Delivery")]++
	}
	if len(reqs) == 0 || len(seen) != len(reqs) {
		t.Errorf("the flaky receiver got %d requests for %d deliveries", len(reqs), len(seen))
	}
	ns, err := w.db.Notifications(context.Background(), "down", 100)
	if err != nil || len(ns) == 0 {
		t.Fatalf("%v %d", err, len(ns))
	}
	for _, n := range ns {
		if n.State == store.NotifySent || n.JobState != "failed" || !strings.Contains(n.JobError, "HTTP 500") {
			t.Errorf("undeliverable notification %d: %s, job %s %q", n.ID, n.State, n.JobState, n.JobError)
		}
	}
	// HP only: no other brand's case was sent.
	for _, r := range reqs {
		var body WebhookBody
		json.Unmarshal(r.body, &body)
		if !strings.EqualFold(body.Case.Brand, "hp") {
			t.Errorf("brand filter: %s (%s) was sent", body.Case.Domain, body.Case.Brand)
		}
	}
}

// A channel whose address the guard refuses is never connected to.
func TestGuardRefusesAChannel(t *testing.T) {
	r := newReceiver(t)
	w := newWorld(t) // the receiver is not let through
	cfg := w.config(t, `
channels: [{name: soc, type: webhook, url: "`+r.srv.URL+`", secret_env: HOOK_SECRET}]
triggers: [{events: [new_case], channels: [soc]}]
`)
	w.scan(t, cfg)
	w.drain(t, cfg)
	if n := len(r.requests()); n != 0 {
		t.Errorf("the guard let %d requests through", n)
	}
	ns, _ := w.db.Notifications(context.Background(), "soc", 1)
	if len(ns) != 1 || !strings.Contains(ns[0].JobError, "127.0.0.1") {
		t.Errorf("the refusal is not recorded: %+v", ns)
	}
}

// A takedown, a site confirmed and a site back up after its takedown become events, each once,
// and an hourly e-mail digest carries them when its hour is over.
func TestTakedownBackUpAndDigest(t *testing.T) {
	w := newWorld(t)
	smtp := testkit.StartSMTP(t)
	cfg := w.config(t, `
channels:
  - {name: team, type: email, every: hourly, to: brand@example.org, from: helpwatch@example.org, smtp: "`+smtp.Addr+`"}
triggers:
  - {events: [site_confirmed, taken_down, back_up], channels: [team]}
`)
	ctx := context.Background()
	c, ok, err := w.db.Case(ctx, "hp-printer-setup-help.com")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	check := func(at time.Time, verdict string) {
		if _, err := w.db.DB().ExecContext(ctx, `INSERT INTO site_checks (name, checked_at, verdict, case_id) VALUES ($1, $2, $3, $4)`,
			c.Registrable, at.UnixMilli(), verdict, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	now := w.clock.Now()
	check(now.Add(-50*time.Minute), "helpline")
	check(now.Add(-45*time.Minute), "helpline") // a re-check: the same confirmation
	rep := &store.AbuseReport{CaseID: c.ID, Destination: store.DestRegistrar, Registrar: "R", Recipient: "abuse@registrar.test",
		MessageID: "<r1@helpwatch>", AbuseType: "phishing", PreparedAt: now.Add(-40 * time.Minute), Names: []string{c.Registrable}}
	if err := w.db.RecordAbuseReport(ctx, rep); err != nil {
		t.Fatal(err)
	}
	if err := w.db.RecordTakedown(ctx, rep.ID, c.Registrable, now.Add(-30*time.Minute), "nxdomain"); err != nil {
		t.Fatal(err)
	}
	check(now.Add(-10*time.Minute), "clone") // back up
	w.scan(t, cfg)
	w.scan(t, cfg)
	if got := len(smtp.Received()); got != 0 {
		t.Fatalf("%d mails before the hour is over", got)
	}
	kinds := map[string]int{}
	ns, _ := w.db.Notifications(ctx, "team", 100)
	for _, n := range ns {
		kinds[n.Event]++
		if n.State != store.NotifyDigest {
			t.Errorf("%s is %s, want waiting for the digest", n.Key, n.State)
		}
	}
	if kinds[SiteConfirmed] != 1 || kinds[TakenDown] != 1 || kinds[BackUp] != 1 || len(ns) != 3 {
		t.Fatalf("events: %v", kinds)
	}
	w.clock.add(time.Hour)
	w.scan(t, cfg)
	w.scan(t, cfg)
	w.drain(t, cfg)
	mails := smtp.Received()
	if len(mails) != 1 {
		t.Fatalf("%d digest mails, want 1", len(mails))
	}
	text := string(mails[0].Data)
	for _, want := range []string{"Subject: helpwatch hourly digest: 3 event(s)", "hp-printer-setup-help[.]com is taken down (nxdomain)",
		"is back up", "shows a helpline page", "To: brand@example.org"} {
		if !strings.Contains(text, want) {
			t.Errorf("the digest lacks %q:\n%s", want, text)
		}
	}
	// The takedown leaves a site check pending (it queues one a day later when none is): that
	// is what sees a site back up.
	var pending int
	if err := w.db.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM jobs WHERE kind = 'site' AND case_id = $1 AND state = 'queued'`, c.ID).Scan(&pending); err != nil || pending != 1 {
		t.Errorf("site checks pending after the takedown: %d (%v)", pending, err)
	}
}

// A hook command gets the event on standard input and in its environment; one that runs past
// its timeout is killed, with its children, and the delivery is retried.
func TestHookCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "hook.sh")
	os.WriteFile(script, []byte("#!/bin/sh\ncat > \""+out+"\"\necho \"$HELPWATCH_EVENT $HELPWATCH_DOMAIN $HELPWATCH_VERDICT\" >> \""+out+".env\"\n"), 0o700)
	slow := filepath.Join(dir, "slow.sh")
	os.WriteFile(slow, []byte("#!/bin/sh\nsleep 60 &\nsleep 60\n"), 0o700)
	e := TestEvent("", time.Now())
	m := &Message{Delivery: "d1", Event: &e}
	reply, err := (&Command{Argv: []string{script}, Timeout: 10 * time.Second}).Send(context.Background(), m)
	if err != nil || reply != "exit 0" {
		t.Fatalf("hook: %q %v", reply, err)
	}
	body, _ := os.ReadFile(out)
	var got WebhookBody
	if err := json.Unmarshal(body, &got); err != nil || got.Delivery != "d1" || got.Case.Domain != "example.com" {
		t.Errorf("stdin: %s (%v)", body, err)
	}
	env, _ := os.ReadFile(out + ".env")
	if strings.TrimSpace(string(env)) != "new_case example.com alert" {
		t.Errorf("environment: %q", env)
	}
	_, err = (&Command{Argv: []string{slow}, Timeout: 200 * time.Millisecond}).Send(context.Background(), m)
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("a hook past its timeout: %v", err)
	}
}

// Settings errors name the file and line.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"channels:\n  - {name: a, type: pager}\ntriggers: []\n", `notify.yaml:2: channel "a": type "pager"`},
		{"channels:\n  - {name: a, type: webhook, url: 'https://x.test'}\ntriggers: []\n", "secret_env"},
		{"channels:\n  - {name: a, type: slack, url_env: NOPE}\ntriggers: []\n", "url_env NOPE is empty"},
		{"channels:\n  - {name: a, type: slack, url: 'https://x.test'}\ntriggers:\n  - {events: [new_cases], channels: [a]}\n", `notify.yaml:4: unknown event "new_cases"`},
		{"channels:\n  - {name: a, type: slack, url: 'https://x.test'}\ntriggers:\n  - {events: [new_case], channels: [b]}\n", `notify.yaml:4: channel "b" is not defined`},
		{"channels:\n  - {name: a, type: slack, url: 'https://x.test'}\ntriggers:\n  - {events: [new_case], min_verdict: loud, channels: [a]}\n", "notify.yaml:4: min_verdict"},
		{"channels:\n  - {name: a, type: slack, url: 'https://x.test', colour: red}\ntriggers: []\n", "colour"},
		{"channels:\n  - {name: a, type: email, to: a@b.c, from: d@e.f, smtp: 'h:25', every: weekly}\ntriggers: []\n", "every \"weekly\""},
	} {
		_, err := Parse("notify.yaml", []byte(tc.yaml), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
	// The example in docs parses, with its secrets in the environment.
	cfg, err := Load("../../docs/notify.example.yaml", func(k string) string {
		return "https://hooks.example.org/" + strconv.Itoa(len(k)) + "-0123456789abcdef"
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Channels) < 5 || len(cfg.Triggers) < 2 {
		t.Errorf("the example: %d channels, %d triggers", len(cfg.Channels), len(cfg.Triggers))
	}
}

// Outside text cannot make links, mentions or formatting in Slack and Teams messages.
func TestChatMessagesEscapeOutsideText(t *testing.T) {
	e := TestEvent("", time.Now())
	e.Summary = "<!channel> <https://evil.example|click> [here](https://evil.example) *bold*"
	e.Case.Why = []string{"+30: brand name appears as a word: \"<@U123>\""}
	slack, _ := slackBody(&Message{Event: &e})
	var sm struct {
		Text   string `json:"text"`
		Blocks []struct {
			Text struct {
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	json.Unmarshal(slack, &sm)
	all := sm.Text
	for _, b := range sm.Blocks {
		all += b.Text.Text
	}
	if strings.Contains(all, "<!channel>") || strings.Contains(all, "<https://evil") || strings.Contains(all, "<@U123>") || strings.Contains(all, "*bold*") {
		t.Errorf("slack: %s", all)
	}
	teams, _ := teamsBody(&Message{Event: &e})
	if strings.Contains(string(teams), "](https://evil") || strings.Contains(string(teams), "*bold*") {
		t.Errorf("teams: %s", teams)
	}
}

// A followed CT log lagging past the limit, or whose answers failed verification since the
// last look, is an event at most once an hour per log.
func TestLogEvents(t *testing.T) {
	r := newReceiver(t)
	w := newWorld(t, r)
	cfg := w.config(t, `
log_lag_limit: 5m
channels: [{name: ops, type: webhook, url: "`+r.srv.URL+`", secret_env: HOOK_SECRET}]
triggers: [{events: [log_lagging, log_refused], channels: [ops]}]
`)
	now := w.clock.Now()
	logs := []watcher.LogStatus{
		{Name: "Slow log", URL: "https://slow.example/", Followed: true, TreeSize: 100, Next: 50, TreeTime: now, NextTime: now.Add(-20 * time.Minute)},
		{Name: "Good log", URL: "https://good.example/", Followed: true, TreeSize: 100, Next: 100, TreeTime: now.Add(-time.Minute)},
	}
	var mu sync.Mutex
	sc := &Scanner{Store: w.db, Config: cfg, Now: w.clock.Now, Logs: func() []watcher.LogStatus {
		mu.Lock()
		defer mu.Unlock()
		return append([]watcher.LogStatus(nil), logs...)
	}}
	scan := func() {
		if err := sc.Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	scan()
	scan()
	mu.Lock()
	logs[1].VerifyFailures = 3 // the good log's answers now fail verification
	mu.Unlock()
	scan()
	scan()
	w.drain(t, cfg)
	var kinds []string
	for _, req := range r.requests() {
		var body WebhookBody
		json.Unmarshal(req.body, &body)
		if body.Log == nil {
			t.Fatalf("a log event without its log: %s", req.body)
		}
		kinds = append(kinds, body.Kind+" "+body.Log.Name)
	}
	slices.Sort(kinds)
	if want := []string{"log_lagging Slow log", "log_refused Good log"}; !slices.Equal(kinds, want) {
		t.Errorf("log events %v, want %v", kinds, want)
	}
	// An hour later the slow log, still lagging, is said again.
	w.clock.add(time.Hour)
	mu.Lock()
	logs[1].TreeTime = w.clock.Now().Add(-time.Minute) // the good log keeps up
	logs[0].TreeTime = w.clock.Now()
	mu.Unlock()
	scan()
	w.drain(t, cfg)
	if n := len(r.requests()); n != 3 {
		t.Errorf("%d log events after an hour more, want 3", n)
	}
}

// A scan's cursor stays before rows that have not settled (a row committed late with a lower
// id is still found), and moves past settled ones.
func TestCursorWaitsForRowsToSettle(t *testing.T) {
	w := newWorld(t)
	cfg := w.config(t, "channels: [{name: c, type: command, command: [/bin/true]}]\ntriggers: [{events: [new_case], channels: [c]}]\n")
	ctx := context.Background()
	young := &Scanner{Store: w.db, Config: cfg, Now: w.clock.Now, Settle: 365 * 24 * time.Hour}
	if err := young.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if pos, _, _ := w.db.NotifyCursor(ctx, "cases"); pos != 0 {
		t.Errorf("the cursor moved to %d past rows that had not settled", pos)
	}
	w.scan(t, cfg)
	cases, _ := w.db.CasesAfter(ctx, 0, 1000)
	if pos, _, _ := w.db.NotifyCursor(ctx, "cases"); pos != cases[len(cases)-1].ID {
		t.Errorf("the cursor is at %d, want %d", pos, cases[len(cases)-1].ID)
	}
	ns, _ := w.db.Notifications(ctx, "c", 1000)
	if want := len(alertCases(t, w.db)); len(ns) < want {
		t.Errorf("%d notifications for at least %d alert cases", len(ns), want)
	}
}
