package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/helpwatch/helpwatch/watcher/abuse"
	"github.com/helpwatch/helpwatch/watcher/output"
)

// Message is what one notification delivers: an event, or a digest of events.
type Message struct {
	// Delivery is the notification's stable id: the same on a retry, so that a receiver can
	// drop a copy sent again after a crash between its answer and our record of it.
	Delivery string
	Event    *Event
	// Digest holds the events of a digest (Event is nil then), over Period.
	Digest []Event
	Period string
}

// Channel delivers a message and returns the receiver's answer. Every channel type is one
// of these; adding one is a type here and a case in NewChannel.
type Channel interface {
	Send(ctx context.Context, m *Message) (reply string, err error)
}

// NewChannel builds the channel c describes. client is the HTTP client of the address guard.
func NewChannel(c *ChannelConfig, client *http.Client) Channel {
	switch c.Type {
	case TypeWebhook:
		return &Webhook{URL: c.URL, Secret: c.Secret, Client: client}
	case TypeSlack:
		return &poster{url: c.URL, client: client, body: slackBody}
	case TypeTeams:
		return &poster{url: c.URL, client: client, body: teamsBody}
	case TypeEmail:
		return &Email{From: c.From, To: c.To, SMTP: abuse.SMTP{Addr: c.SMTP, StartTLS: c.StartTLS, User: c.User, Password: c.Password}}
	case TypeCommand:
		return &Command{Argv: c.Command, Timeout: c.Timeout}
	}
	return nil
}

// post sends body and reads a bounded answer; anything but 2xx is an error naming the host
// (never the URL: Slack's and Teams' URLs are secrets).
func post(ctx context.Context, client *http.Client, url string, body []byte, header http.Header) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", errors.New("the channel's URL is not usable")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "helpwatch-notify")
	resp, err := client.Do(req)
	if err != nil {
		// The error may quote the URL: only the host is named.
		return "", fmt.Errorf("posting to %s: %w", req.URL.Host, redactURL(err, url, req.URL.Scheme+"://"+req.URL.Host))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 2<<10))
	text := output.Printable(strings.Join(strings.Fields(string(answer)), " "))
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("%s answered HTTP %d: %s", req.URL.Host, resp.StatusCode, text)
	}
	if text == "" {
		return "HTTP " + strconv.Itoa(resp.StatusCode), nil
	}
	return fmt.Sprintf("HTTP %d %s", resp.StatusCode, text), nil
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }

func redactURL(err error, url, origin string) error {
	return &redacted{msg: strings.ReplaceAll(err.Error(), url, origin+"/…"), err: err}
}

// Webhook posts the event as JSON, signed: X-Helpwatch-Signature is "sha256=" and the hex
// HMAC-SHA256, keyed with the secret, of the X-Helpwatch-Timestamp value (Unix seconds), a
// period and the body. A receiver checks the signature and that the timestamp is recent.
type Webhook struct {
	URL    string
	Secret []byte
	Client *http.Client
	Now    func() time.Time
}

// WebhookBody is what a webhook receives.
type WebhookBody struct {
	Delivery string `json:"delivery"`
	Event
}

// Sign is the signature of body sent at timestamp.
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Send posts m's event.
func (w *Webhook) Send(ctx context.Context, m *Message) (string, error) {
	if m.Event == nil {
		return "", errors.New("a webhook sends events, not digests")
	}
	body, err := json.Marshal(WebhookBody{Delivery: m.Delivery, Event: *m.Event})
	if err != nil {
		return "", err
	}
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	h := http.Header{}
	h.Set("X-Helpwatch-Event", m.Event.Kind)
	h.Set("X-Helpwatch-Delivery", m.Delivery)
	h.Set("X-Helpwatch-Timestamp", ts)
	h.Set("X-Helpwatch-Signature", Sign(w.Secret, ts, body))
	return post(ctx, w.Client, w.URL, body, h)
}

// poster posts a chat message made by body (Slack, Teams).
type poster struct {
	url    string
	client *http.Client
	body   func(m *Message) ([]byte, error)
}

func (p *poster) Send(ctx context.Context, m *Message) (string, error) {
	if m.Event == nil {
		return "", errors.New("a chat channel sends events, not digests")
	}
	body, err := p.body(m)
	if err != nil {
		return "", err
	}
	return post(ctx, p.client, p.url, body, nil)
}

// facts are the lines of a short card: what a reader needs to decide to open the case.
func facts(e *Event) [][2]string {
	if e.Log != nil {
		out := [][2]string{{"Log", e.Log.Name}, {"Lag", (time.Duration(e.Log.LagS) * time.Second).String()}}
		if e.Log.LastError != "" {
			out = append(out, [2]string{"Last error", clip(e.Log.LastError, 200)})
		}
		return out
	}
	c := e.Case
	brand := c.Brand
	if brand == "" {
		brand = "none"
	}
	out := [][2]string{{"Domain", c.Defanged}, {"Brand", brand}, {"Score", fmt.Sprintf("%d (%s; %d points)", c.Score, c.Verdict, c.Points)}}
	if c.SiteVerdict != "" {
		out = append(out, [2]string{"Site", c.SiteVerdict})
	}
	if c.Takedown != "" {
		out = append(out, [2]string{"Takedown", c.Takedown})
	}
	if len(c.Why) > 0 {
		why := c.Why
		if len(why) > 4 {
			why = append(why[:4:4], fmt.Sprintf("and %d more", len(c.Why)-4))
		}
		out = append(out, [2]string{"Why", clip(strings.Join(why, "; "), 300)})
	}
	return out
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// slackEscape escapes what Slack's mrkdwn reads as markup: &, < and > (its link and mention
// syntax), and breaks the formatting characters so that outside text cannot style or link.
func slackEscape(s string) string {
	s = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
	return strings.NewReplacer("*", "\u2217", "_", "\uff3f", "~", "\u223c", "`", "\u02cb").Replace(s)
}

// slackBody is an incoming-webhook message: a fallback text and blocks.
func slackBody(m *Message) ([]byte, error) {
	e := m.Event
	var lines []string
	for _, f := range facts(e) {
		lines = append(lines, "*"+f[0]+":* "+slackEscape(f[1]))
	}
	blocks := []any{
		map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*helpwatch: " + slackEscape(e.Summary) + "*"}},
		map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": strings.Join(lines, "\n")}},
	}
	if e.Case != nil && e.Case.ConsoleURL != "" {
		blocks = append(blocks, map[string]any{"type": "actions", "elements": []any{map[string]any{
			"type": "button", "text": map[string]any{"type": "plain_text", "text": "Open the case"}, "url": e.Case.ConsoleURL}}})
	}
	return json.Marshal(map[string]any{"text": "helpwatch: " + slackEscape(e.Summary), "blocks": blocks})
}

// teamsEscape breaks the Markdown subset an Adaptive Card's TextBlock and FactSet read: a link
// needs "](" and emphasis needs * or _ (Teams does not honour backslash escapes everywhere, so
// the characters are replaced, not escaped). A defanged "[.]" stays as it is.
func teamsEscape(s string) string {
	return strings.NewReplacer("](", "] (", "*", "\u2217", "_", "\uff3f", "`", "\u02cb").Replace(s)
}

// teamsBody is a message with one Adaptive Card, as Teams' workflow webhooks ("Post to a
// channel when a webhook request is received") take it.
func teamsBody(m *Message) ([]byte, error) {
	e := m.Event
	var factSet []any
	for _, f := range facts(e) {
		factSet = append(factSet, map[string]any{"title": f[0], "value": teamsEscape(f[1])})
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
		"body": []any{
			map[string]any{"type": "TextBlock", "text": "helpwatch: " + teamsEscape(e.Summary), "weight": "Bolder", "wrap": true},
			map[string]any{"type": "FactSet", "facts": factSet},
		},
	}
	if e.Case != nil && e.Case.ConsoleURL != "" {
		card["actions"] = []any{map[string]any{"type": "Action.OpenUrl", "title": "Open the case", "url": e.Case.ConsoleURL}}
	}
	return json.Marshal(map[string]any{"type": "message", "attachments": []any{map[string]any{
		"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": nil, "content": card}}})
}

// Email mails an event, or a digest of events, as plain text.
type Email struct {
	From, To string
	SMTP     abuse.SMTP
	Now      func() time.Time
}

// Send mails m.
func (em *Email) Send(ctx context.Context, m *Message) (string, error) {
	now := time.Now().UTC()
	if em.Now != nil {
		now = em.Now().UTC()
	}
	var subject string
	var body strings.Builder
	events := m.Digest
	if m.Event != nil {
		events = []Event{*m.Event}
		subject = "helpwatch: " + m.Event.Summary
	} else {
		subject = fmt.Sprintf("helpwatch %s digest: %d event(s)", m.Period, len(events))
		fmt.Fprintf(&body, "%d event(s), %s digest up to %s.\n\n", len(events), m.Period, now.Format("2006-01-02 15:04 UTC"))
	}
	for _, e := range events {
		fmt.Fprintf(&body, "%s  %s\n", e.At.UTC().Format("2006-01-02 15:04"), e.Summary)
		for _, f := range facts(&e) {
			fmt.Fprintf(&body, "    %-9s %s\n", f[0]+":", f[1])
		}
		if e.Case != nil && e.Case.ConsoleURL != "" {
			fmt.Fprintf(&body, "    %-9s %s\n", "Case:", e.Case.ConsoleURL)
		}
		body.WriteString("\n")
	}
	body.WriteString("-- \nhelpwatch notifications. Domains are defanged: [.] is a dot.\n")
	id := make([]byte, 12)
	rand.Read(id)
	host := em.From[strings.LastIndex(em.From, "@")+1:]
	var raw bytes.Buffer
	for _, h := range [][2]string{
		{"From", em.From}, {"To", em.To}, {"Subject", mime.QEncoding.Encode("utf-8", output.Printable(subject))},
		{"Date", now.Format(time.RFC1123Z)}, {"Message-ID", "<" + hex.EncodeToString(id) + "@" + host + ">"},
		{"X-Helpwatch-Delivery", m.Delivery}, {"MIME-Version", "1.0"}, {"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "8bit"}, {"Auto-Submitted", "auto-generated"},
	} {
		fmt.Fprintf(&raw, "%s: %s\r\n", h[0], h[1])
	}
	raw.WriteString("\r\n")
	raw.WriteString(strings.ReplaceAll(output.Printable(body.String()), "\n", "\r\n"))
	return abuse.SendMail(ctx, em.SMTP, em.From, em.To, raw.Bytes())
}

// Command runs a program per event, as certspotter's hook scripts: the event as JSON on its
// standard input, HELPWATCH_* variables in its environment, killed (with everything it
// started) when Timeout passes. Exit status 0 is delivered.
type Command struct {
	Argv    []string
	Timeout time.Duration
}

// Send runs the command for m's event.
func (c *Command) Send(ctx context.Context, m *Message) (string, error) {
	if m.Event == nil {
		return "", errors.New("a hook command runs per event, not per digest")
	}
	body, err := json.Marshal(WebhookBody{Delivery: m.Delivery, Event: *m.Event})
	if err != nil {
		return "", err
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The whole process group goes when time is up: a hook's own children too.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	cmd.Stdin = bytes.NewReader(body)
	env := []string{"HELPWATCH_EVENT=" + m.Event.Kind, "HELPWATCH_EVENT_ID=" + m.Event.ID, "HELPWATCH_DELIVERY=" + m.Delivery,
		"HELPWATCH_SUMMARY=" + m.Event.Summary}
	if cs := m.Event.Case; cs != nil {
		env = append(env, "HELPWATCH_DOMAIN="+cs.Domain, "HELPWATCH_BRAND="+cs.Brand, "HELPWATCH_VERDICT="+cs.Verdict,
			"HELPWATCH_SCORE="+strconv.Itoa(cs.Score), "HELPWATCH_SITE_VERDICT="+cs.SiteVerdict, "HELPWATCH_CASE_URL="+cs.ConsoleURL)
	}
	for _, keep := range []string{"PATH", "HOME", "LANG", "TZ"} {
		if v, ok := os.LookupEnv(keep); ok {
			env = append(env, keep+"="+v)
		}
	}
	cmd.Env = env
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	said := output.Printable(strings.Join(strings.Fields(out.String()), " "))
	if len(said) > 200 {
		said = said[:200] + "..."
	}
	if ctx.Err() == context.DeadlineExceeded {
		return "", fmt.Errorf("hook %s did not finish within %s (killed): %s", c.Argv[0], timeout, said)
	}
	if err != nil {
		return "", fmt.Errorf("hook %s: %v: %s", c.Argv[0], err, said)
	}
	if said == "" {
		return "exit 0", nil
	}
	return "exit 0: " + said, nil
}

// limitedBuffer keeps the first 4 KiB written to it and drops the rest: a hook that prints
// without end costs nothing.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4<<10 - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return l.b.String() }
