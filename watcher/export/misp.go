package export

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/output"
)

// MISPOptions shape the events.
type MISPOptions struct {
	// TLP is the Traffic Light Protocol tag (clear, green, amber, amber+strict, red).
	TLP string
	// ConsoleURL links each event to its case in the console.
	ConsoleURL string
	// Now stamps the events (default time.Now).
	Now func() time.Time
}

// MISPEvent is an event in MISP's JSON format ({"Event": {...}}).
type MISPEvent struct {
	Event mispEvent `json:"Event"`
}

type mispEvent struct {
	UUID          string       `json:"uuid"`
	Info          string       `json:"info"`
	Date          string       `json:"date"`
	Timestamp     string       `json:"timestamp"`
	ThreatLevelID string       `json:"threat_level_id"`
	Analysis      string       `json:"analysis"`
	Distribution  string       `json:"distribution"`
	Published     bool         `json:"published"`
	Tag           []mispTag    `json:"Tag"`
	Attribute     []MISPAttr   `json:"Attribute"`
	Object        []MISPObject `json:"Object"`
}

type mispTag struct {
	Name string `json:"name"`
}

// MISPObject is one object of an event: a template's name, uuid and version, and attributes
// named by the template's relations.
type MISPObject struct {
	Name            string     `json:"name"`
	MetaCategory    string     `json:"meta-category"`
	Description     string     `json:"description"`
	TemplateUUID    string     `json:"template_uuid"`
	TemplateVersion string     `json:"template_version"`
	UUID            string     `json:"uuid"`
	Timestamp       string     `json:"timestamp"`
	Distribution    string     `json:"distribution"`
	Comment         string     `json:"comment,omitempty"`
	Attribute       []MISPAttr `json:"Attribute"`
}

// MISPAttr is one attribute.
type MISPAttr struct {
	UUID               string `json:"uuid"`
	ObjectRelation     string `json:"object_relation,omitempty"`
	Type               string `json:"type"`
	Category           string `json:"category"`
	Value              string `json:"value"`
	ToIDS              bool   `json:"to_ids"`
	DisableCorrelation bool   `json:"disable_correlation"`
	Comment            string `json:"comment,omitempty"`
	Distribution       string `json:"distribution"`
	Data               string `json:"data,omitempty"` // an attachment's content, base64
}

// mispTemplate is what an object needs of its template (misp-objects' definition.json).
type mispTemplate struct {
	uuid, version, meta, description string
	// relation -> MISP attribute type and category
	attrs map[string][2]string
}

// The templates used, as misp-objects defines them (the tests check them against its
// definition files).
var mispTemplates = map[string]mispTemplate{
	"domain-ip": {"43b3b146-77eb-4931-b4cc-b66c60f28734", "11", "network", "A domain/hostname and IP address seen as a tuple in a specific time frame.",
		map[string][2]string{"domain": {"domain", "Network activity"}, "ip": {"ip-dst", "Network activity"}, "first-seen": {"datetime", "Other"},
			"last-seen": {"datetime", "Other"}, "registration-date": {"datetime", "Other"}}},
	"phishing": {"2dad6f9d-d425-4217-8fda-0b0a2d815307", "7", "network", "Phishing template to describe a phishing website and its analysis.",
		map[string][2]string{"url": {"url", "Network activity"}, "screenshot": {"attachment", "External analysis"}, "target": {"text", "Other"},
			"hostname": {"hostname", "Network activity"}, "ip": {"ip-dst", "Network activity"}, "online": {"text", "Other"},
			"takedown-time": {"datetime", "Other"}, "url-redirect": {"url", "Network activity"}}},
	"x509": {"d1ab756a-26b5-4349-9f43-765630f0911c", "14", "network", "x509 object describing a X.509 certificate",
		map[string][2]string{"x509-fingerprint-sha256": {"x509-fingerprint-sha256", "Network activity"}, "x509-fingerprint-sha1": {"x509-fingerprint-sha1", "Network activity"},
			"issuer": {"text", "Other"}, "validity-not-before": {"datetime", "Other"}, "validity-not-after": {"datetime", "Other"}, "dns_names": {"hostname", "Network activity"}}},
	"whois": {"429faea1-34ff-47af-8a00-7c62d3be5a6a", "10", "network", "Whois records information for a domain name or an IP address.",
		map[string][2]string{"domain": {"domain", "Network activity"}, "registrar": {"whois-registrar", "Attribution"}, "creation-date": {"datetime", "Other"},
			"nameserver": {"hostname", "Network activity"}}},
	"phone": {"d7e4fbdd-b551-4862-bddb-a0b470a38509", "6", "misc", "A phone or mobile phone object which describe a phone.",
		map[string][2]string{"msisdn": {"text", "Other"}, "first-seen": {"datetime", "Other"}, "last-seen": {"datetime", "Other"}}},
}

// objectBuilder adds attributes to one object.
type objectBuilder struct {
	event string
	obj   MISPObject
	tmpl  mispTemplate
}

func newObject(eventUUID, name, key, ts string) *objectBuilder {
	t := mispTemplates[name]
	return &objectBuilder{event: eventUUID, tmpl: t, obj: MISPObject{Name: name, MetaCategory: t.meta, Description: t.description,
		TemplateUUID: t.uuid, TemplateVersion: t.version, UUID: uuid5(helpwatchNamespace, eventUUID+"/"+name+"/"+key), Timestamp: ts, Distribution: "5"}}
}

func (b *objectBuilder) add(relation, value string, toIDS bool) *MISPAttr {
	if value == "" {
		return nil
	}
	ta := b.tmpl.attrs[relation]
	b.obj.Attribute = append(b.obj.Attribute, MISPAttr{UUID: uuid5(helpwatchNamespace, b.obj.UUID+"/"+relation+"/"+value), ObjectRelation: relation,
		Type: ta[0], Category: ta[1], Value: value, ToIDS: toIDS, DisableCorrelation: ta[0] == "datetime" || ta[0] == "text", Distribution: "5"})
	return &b.obj.Attribute[len(b.obj.Attribute)-1]
}

func (b *objectBuilder) addTime(relation string, t time.Time) {
	if !t.IsZero() {
		b.add(relation, t.UTC().Format("2006-01-02T15:04:05Z"), false)
	}
}

// EventUUID is the MISP event uuid of a case.
func EventUUID(registrable string) string {
	return uuid5(helpwatchNamespace, "misp-event/"+registrable)
}

// NewMISPEvent builds the event of one case.
func NewMISPEvent(it *Item, opts MISPOptions) MISPEvent {
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	c := &it.Case
	id := EventUUID(c.Registrable)
	ts := strconv.FormatInt(it.lastObserved().Unix(), 10)
	brand := c.Brand
	if brand == "" {
		brand = "a printer brand"
	}
	site := it.siteVerdict()
	ev := mispEvent{UUID: id, Date: it.firstObserved().Format(time.DateOnly), Timestamp: strconv.FormatInt(now.Unix(), 10),
		Info:          fmt.Sprintf("helpwatch: %s impersonating %s (%s, score %d)", output.Printable(c.Registrable), output.Printable(brand), c.Score.Verdict, c.Score.Score),
		ThreatLevelID: "3", Analysis: "0", Distribution: "0"}
	// Threat level: high once a page was seen, medium for an alert by name, low otherwise.
	// Analysis: completed when an analyst said scam, ongoing once a site was checked.
	switch {
	case site == rules.SiteClone || site == rules.SiteHelpline:
		ev.ThreatLevelID = "1"
	case c.Score.Verdict == rules.VerdictAlert:
		ev.ThreatLevelID = "2"
	}
	if c.Label != nil && c.Label.Label == rules.LabelScam {
		ev.Analysis = "2"
	} else if site != "" {
		ev.Analysis = "1"
	}
	tlp := opts.TLP
	if tlp == "" {
		tlp = "amber"
	}
	ev.Tag = []mispTag{{"tlp:" + tlp}, {`helpwatch:verdict="` + string(c.Score.Verdict) + `"`}}
	if c.Brand != "" {
		ev.Tag = append(ev.Tag, mispTag{`helpwatch:brand="` + output.Printable(c.Brand) + `"`})
	}
	if site != "" {
		ev.Tag = append(ev.Tag, mispTag{`helpwatch:site="` + string(site) + `"`})
	}
	if c.Label != nil {
		ev.Tag = append(ev.Tag, mispTag{`helpwatch:label="` + string(c.Label.Label) + `"`})
	}
	why := make([]string, 0, len(c.Score.Reasons))
	for _, r := range c.Score.Reasons {
		why = append(why, fmt.Sprintf("%+d %s", r.Points, output.Printable(r.Detail)))
	}
	if opts.ConsoleURL != "" && c.ID > 0 {
		why = append(why, "case: "+opts.ConsoleURL+"/case/"+strconv.FormatInt(c.ID, 10))
	}
	ev.Attribute = []MISPAttr{{UUID: uuid5(helpwatchNamespace, id+"/why"), Type: "comment", Category: "Other", Distribution: "5",
		Value: "Why helpwatch flagged it: " + strings.Join(why, "; "), DisableCorrelation: true}}

	addrs := it.addresses()
	dip := newObject(id, "domain-ip", c.Registrable, ts)
	dip.add("domain", c.Registrable, true)
	for _, a := range addrs {
		dip.add("ip", a, false)
	}
	dip.addTime("first-seen", it.firstObserved())
	dip.addTime("last-seen", it.lastObserved())
	if en := c.Enrichment; en != nil {
		dip.addTime("registration-date", en.Registration.Created)
	}
	ev.Object = append(ev.Object, dip.obj)

	if it.Capture != nil || site != "" {
		ph := newObject(id, "phishing", c.Registrable, ts)
		url := "https://" + c.Registrable + "/"
		if it.Capture != nil && len(it.Capture.Shots) > 0 && it.Capture.Shots[0].URL != "" {
			url = it.Capture.Shots[0].URL
		}
		ph.add("url", output.Printable(url), true)
		if it.Capture != nil {
			for _, s := range it.Capture.Shots {
				if s.FinalURL != "" && s.FinalURL != url {
					ph.add("url-redirect", output.Printable(s.FinalURL), false)
				}
			}
		}
		ph.add("hostname", c.Registrable, false)
		for _, a := range addrs {
			ph.add("ip", a, false)
		}
		if c.Brand != "" {
			ph.add("target", output.Printable(c.Brand), false)
		}
		if !it.TakenDown.IsZero() {
			ph.add("online", "No", false)
			ph.addTime("takedown-time", it.TakenDown)
		} else if site == rules.SiteClone || site == rules.SiteHelpline {
			ph.add("online", "Yes", false)
		}
		if len(it.Screenshot) > 0 {
			if a := ph.add("screenshot", "screenshot-"+it.ScreenshotSHA[:16]+".png", false); a != nil {
				a.Data = base64.StdEncoding.EncodeToString(it.Screenshot)
				a.Comment = "captured " + it.Capture.At.UTC().Format(time.RFC3339) + ", sha256 " + it.ScreenshotSHA
			}
		}
		ev.Object = append(ev.Object, ph.obj)
	}

	if fp := strings.ToLower(strings.ReplaceAll(c.Cert.Fingerprint, ":", "")); len(fp) == 64 || len(fp) == 40 {
		x := newObject(id, "x509", fp, ts)
		if len(fp) == 64 {
			x.add("x509-fingerprint-sha256", fp, false)
		} else {
			x.add("x509-fingerprint-sha1", fp, false)
		}
		x.add("issuer", output.Printable(c.Cert.Issuer), false)
		x.addTime("validity-not-before", c.Cert.NotBefore)
		x.addTime("validity-not-after", c.Cert.NotAfter)
		for _, n := range c.Names {
			x.add("dns_names", strings.TrimPrefix(n.Name, "*."), false)
		}
		x.obj.Comment = "first certificate in CT: " + output.Printable(c.Cert.LogURL) + " #" + strconv.FormatInt(c.Cert.Index, 10)
		ev.Object = append(ev.Object, x.obj)
	}

	if en := c.Enrichment; en != nil && en.Registration.State == watcher.Found {
		w := newObject(id, "whois", c.Registrable, ts)
		w.add("domain", c.Registrable, false)
		w.add("registrar", output.Printable(en.Registration.Registrar), false)
		w.addTime("creation-date", en.Registration.Created)
		for _, ns := range en.Registration.NameServers {
			w.add("nameserver", output.Printable(strings.ToLower(ns)), false)
		}
		w.obj.Comment = "from " + en.Registration.Source
		ev.Object = append(ev.Object, w.obj)
	}

	for _, p := range it.Phones {
		ph := newObject(id, "phone", p, ts)
		ph.add("msisdn", p, false)
		ph.obj.Comment = "shown on the site as its support number"
		ev.Object = append(ev.Object, ph.obj)
	}
	return MISPEvent{Event: ev}
}

// WriteMISP writes the events of items as MISP's search results do: {"response": [events]}.
func WriteMISP(w io.Writer, items []Item, opts MISPOptions) error {
	events := make([]MISPEvent, 0, len(items))
	for i := range items {
		events = append(events, NewMISPEvent(&items[i], opts))
	}
	enc := json.NewEncoder(output.SafeJSON(w))
	enc.SetIndent("", " ")
	return enc.Encode(map[string]any{"response": events})
}

// PushMISP adds each event to the MISP instance at base (its REST API, the key as MISP's
// Authorization header), or edits it when MISP has it already. It returns how many were added
// and updated; it stops at the first error, which names the event.
func PushMISP(ctx context.Context, client *http.Client, base, key string, events []MISPEvent) (added, updated int, err error) {
	base = strings.TrimRight(base, "/")
	send := func(path string, ev *MISPEvent) (int, string, error) {
		body, err := json.Marshal(ev)
		if err != nil {
			return 0, "", err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
		if err != nil {
			return 0, "", fmt.Errorf("--push %q: %w", base, err)
		}
		req.Header.Set("Authorization", key)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return resp.StatusCode, output.Printable(strings.Join(strings.Fields(string(answer)), " ")), nil
	}
	for i := range events {
		ev := &events[i]
		code, answer, err := send("/events/add", ev)
		if err != nil {
			return added, updated, fmt.Errorf("event %s (%s): %w", ev.Event.UUID, ev.Event.Info, err)
		}
		switch {
		case code/100 == 2:
			added++
			continue
		case code == http.StatusUnauthorized || code == http.StatusForbidden && !strings.Contains(strings.ToLower(answer), "already exists"):
			return added, updated, fmt.Errorf("MISP refused the key (HTTP %d): %s", code, clipText(answer, 200))
		case !strings.Contains(strings.ToLower(answer), "already exists"):
			return added, updated, fmt.Errorf("event %s: MISP answered HTTP %d: %s", ev.Event.UUID, code, clipText(answer, 200))
		}
		code, answer, err = send("/events/edit/"+ev.Event.UUID, ev)
		if err != nil {
			return added, updated, fmt.Errorf("event %s: %w", ev.Event.UUID, err)
		}
		if code/100 != 2 {
			return added, updated, fmt.Errorf("event %s: editing it, MISP answered HTTP %d: %s", ev.Event.UUID, code, clipText(answer, 200))
		}
		updated++
	}
	return added, updated, nil
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// ErrNoKey is a push without a key.
var ErrNoKey = errors.New("no MISP key: set HELPWATCH_MISP_KEY")
