package abuse

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// NetcraftReportURL is Netcraft's public report API (v3, no key needed).
const NetcraftReportURL = "https://report.netcraft.com/api/v3/report/urls"

// SafeBrowsingReportURL is Google Safe Browsing's form for a phishing or deceptive page.
const SafeBrowsingReportURL = "https://safebrowsing.google.com/safebrowsing/report_phish/"

// draft is one report as written to the outbox.
type draft struct {
	raw       []byte
	messageID string
	shortID   string
	ext       string
	to        string // an e-mail address or a URL
	desk      string // who receives it
	abuseType string
}

// Defang makes a domain or URL unclickable the way abuse desks expect: hxxp and [.].
func Defang(s string) string {
	s = strings.Replace(s, "http://", "hxxp://", 1)
	s = strings.Replace(s, "https://", "hxxps://", 1)
	return strings.ReplaceAll(s, ".", "[.]")
}

// abuseType is what a desk files the case as: phishing when the page asks for payment,
// personal data or remote access; fraud (a tech-support scam) otherwise.
func abuseType(ev *Evidence) string {
	if ev.Shot != nil && len(ev.Shot.AsksFor) > 0 {
		return "phishing"
	}
	return "fraud"
}

// realSite is the brand's own site from the catalog (its first owned domain name).
func realSite(rs *rules.RuleSet, brand string) string {
	if rs == nil || rs.Source == nil {
		return ""
	}
	for _, b := range rs.Source.Brands {
		if !strings.EqualFold(b.Name, brand) {
			continue
		}
		for _, d := range b.Owned {
			if strings.Contains(d, ".") {
				return "https://www." + d + "/"
			}
		}
	}
	return ""
}

func draftFor(dest string, rep *Reporter, ev *Evidence, opts PrepareOptions) (*draft, string, error) {
	c := ev.Case
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s", c.Registrable, dest, opts.Now.Format(time.RFC3339Nano))
	sum := hex.EncodeToString(h.Sum(nil))
	fromDomain := rep.Email[strings.LastIndexByte(rep.Email, '@')+1:]
	d := &draft{shortID: sum[:10], messageID: "<helpwatch." + sum[:32] + "@" + fromDomain + ">", abuseType: abuseType(ev)}
	switch dest {
	case store.DestRegistrar:
		to, why := registrarAddress(c)
		if why != "" {
			return nil, why, nil
		}
		d.to, d.desk, d.ext = to, c.Enrichment.Registration.Registrar, ".eml"
	case store.DestHosting:
		to, why := hostingAddress(ev)
		if why != "" {
			return nil, why, nil
		}
		d.to, d.desk, d.ext = to, hostingName(ev.Capture.Hosting), ".eml"
	case store.DestNetcraft:
		d.to, d.desk, d.ext = cmpOr(opts.NetcraftURL, NetcraftReportURL), "Netcraft", ".json"
		body, err := netcraftBody(rep, ev)
		if err != nil {
			return nil, "", err
		}
		d.raw = body
		return d, "", nil
	case store.DestSafeBrowsing:
		d.to, d.desk, d.ext = SafeBrowsingReportURL, "Google Safe Browsing", ".txt"
		d.raw = []byte(safeBrowsingPacket(ev, opts))
		return d, "", nil
	default:
		return nil, "", fmt.Errorf("unknown destination %q (use %s)", dest, strings.Join(AllDestinations, ", "))
	}
	raw, err := composeMail(rep, d, dest, ev, opts)
	if err != nil {
		return nil, "", err
	}
	d.raw = raw
	return d, "", nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// registrarAddress is the registrar's abuse e-mail, or why there is none to write to.
func registrarAddress(c *watcher.Case) (string, string) {
	if c.Enrichment == nil {
		return "", "not enriched yet (run 'helpwatch work --drain')"
	}
	reg := c.Enrichment.Registration
	switch reg.State {
	case watcher.NotFound:
		return "", "the registry has no registration for it"
	case watcher.Unknown:
		return "", "registration lookup failed: " + reg.Reason
	}
	return checkedAddress(reg.AbuseEmail, "the registration record names no abuse contact")
}

// hostingAddress is the hosting network's abuse e-mail, or why there is none.
func hostingAddress(ev *Evidence) (string, string) {
	if ev.Capture == nil {
		return "", "no capture: the serving address and its network are not known"
	}
	h := ev.Capture.Hosting
	switch {
	case h == nil:
		return "", "the serving network was not looked up"
	case h.State == watcher.NotFound:
		return "", "the regional registry has no record of " + h.Address
	case h.State == watcher.Unknown:
		return "", "the network lookup of " + h.Address + " failed: " + h.Reason
	}
	return checkedAddress(h.AbuseEmail, "the network record of "+h.Address+" names no abuse contact")
}

func checkedAddress(addr, missing string) (string, string) {
	if addr == "" {
		return "", missing
	}
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || strings.ContainsAny(addr, "\r\n") {
		return "", fmt.Sprintf("abuse contact %q is not an e-mail address", output.Printable(addr))
	}
	return a.Address, ""
}

func hostingName(h *watcher.Hosting) string {
	if h == nil {
		return ""
	}
	return cmpOr(h.Org, h.Name)
}

// reportedURLs are the URLs the abuse was seen at, the flagged one first.
func reportedURLs(ev *Evidence) []string {
	var out []string
	add := func(u string) {
		if u == "" {
			return
		}
		for _, have := range out {
			if have == u {
				return
			}
		}
		out = append(out, u)
	}
	if ev.Shot != nil {
		add(ev.Shot.FinalURL)
		add(ev.Shot.URL)
		for _, r := range ev.Shot.Redirects {
			add(r)
		}
	}
	if len(out) == 0 {
		add("https://" + ev.Case.Registrable + "/")
	}
	return out
}

// observedWindow is when the abuse was first and last observed: first from the case's
// certificate in CT (or first sighting), last from the capture (or the label).
func observedWindow(ev *Evidence) (first, last time.Time) {
	first = ev.Case.CTSeen
	if first.IsZero() {
		first = ev.Case.FirstSeen
	}
	switch {
	case ev.Shot != nil:
		last = ev.Shot.At
	case ev.Label != nil:
		last = ev.Label.At
	}
	return first.UTC(), last.UTC()
}

const utcFormat = "2006-01-02 15:04:05 UTC"

// writeFacts writes what the evidence shows about the case, and nothing it does not: each
// fact says where it comes from, and an unknown (a lookup that failed) is told from a none
// (an answer that was empty).
func writeFacts(b *strings.Builder, ev *Evidence, opts PrepareOptions, to string) {
	c := ev.Case
	kind := map[string]string{"phishing": "Phishing", "fraud": "Fraud (technical-support scam)"}[abuseType(ev)]
	fmt.Fprintf(b, "Abuse type: %s\n", kind)
	fmt.Fprintf(b, "Domain: %s\n", Defang(c.Registrable))
	for _, u := range reportedURLs(ev) {
		fmt.Fprintf(b, "URL: %s\n", Defang(oneLine(u)))
	}
	brand := orUnknown(c.Brand)
	if ev.Shot != nil && ev.Shot.Brand != "" {
		brand = ev.Shot.Brand
	}
	fmt.Fprintf(b, "Targeted brand: %s", oneLine(brand))
	if site := realSite(opts.Rules, brand); site != "" {
		fmt.Fprintf(b, " (its real site: %s)", site)
	}
	b.WriteString("\n")
	first, last := observedWindow(ev)
	if !first.IsZero() {
		fmt.Fprintf(b, "First observed: %s (certificate in Certificate Transparency)\n", first.Format(utcFormat))
	}
	if ev.Shot != nil {
		fmt.Fprintf(b, "Last observed: %s (page captured from %s, HTTP %d)\n", last.Format(utcFormat), oneLine(ev.Shot.Address), ev.Shot.Status)
		var phones []string
		for _, p := range ev.Shot.Phones {
			s := p.E164
			if p.TollFree {
				s += " (toll-free)"
			}
			phones = append(phones, s)
		}
		if len(phones) > 0 {
			fmt.Fprintf(b, "Phone numbers shown: %s\n", oneLine(strings.Join(phones, ", ")))
		} else {
			b.WriteString("Phone numbers shown: none\n")
		}
		if len(ev.Shot.AsksFor) > 0 {
			fmt.Fprintf(b, "The page asks for: %s\n", oneLine(strings.Join(ev.Shot.AsksFor, ", ")))
		}
		fmt.Fprintf(b, "What the page shows: a %s page", ev.Shot.Verdict)
		if len(ev.Shot.Indicators) > 0 {
			fmt.Fprintf(b, " (%s)", oneLine(strings.Join(ev.Shot.Indicators, ", ")))
		}
		b.WriteString("\n")
		if ev.Capture.Cloaked {
			fmt.Fprintf(b, "Cloaking: %s\n", oneLine(ev.Capture.Cloaking))
		}
		if h := ev.Capture.Hosting; h != nil {
			switch h.State {
			case watcher.Found:
				fmt.Fprintf(b, "Hosted on: %s (%s, network %s)\n", oneLine(orUnknown(hostingName(h))), oneLine(orUnknown(h.Country)), oneLine(orUnknown(h.Network)))
			default:
				fmt.Fprintf(b, "Hosted on: unknown (the network lookup of %s did not answer)\n", oneLine(h.Address))
			}
		}
		if t := ev.Shot.TLS; t != nil {
			fmt.Fprintf(b, "Certificate served: issuer %s, valid %s to %s, SHA-256 %s\n", oneLine(t.Issuer),
				t.NotBefore.Format(time.DateOnly), t.NotAfter.Format(time.DateOnly), t.SHA256)
		}
	} else {
		b.WriteString("Site: not captured by helpwatch (no page of it is kept)\n")
	}
	if ev.Label != nil {
		fmt.Fprintf(b, "Analyst's finding (%s, %s): %s\n", oneLine(ev.Label.By), ev.Label.At.UTC().Format(utcFormat), oneLine(cmpOr(ev.Label.Note, "labelled scam")))
	}
	if en := c.Enrichment; en != nil {
		reg := en.Registration
		switch reg.State {
		case watcher.Found:
			created := "not stated in the record"
			if !reg.Created.IsZero() {
				created = reg.Created.UTC().Format(time.DateOnly)
			}
			fmt.Fprintf(b, "Registered: %s through %s", created, oneLine(orUnknown(reg.Registrar)))
			if reg.RegistrarIANAID != "" {
				fmt.Fprintf(b, " (IANA ID %s)", oneLine(reg.RegistrarIANAID))
			}
			fmt.Fprintf(b, ", per %s\n", strings.ToUpper(oneLine(orUnknown(reg.Source))))
		case watcher.NotFound:
			b.WriteString("Registered: the registry has no record\n")
		default:
			b.WriteString("Registered: unknown (the registration lookup failed)\n")
		}
		switch en.Lookups() {
		case watcher.Found:
			if addrs := c.Addresses(); len(addrs) > 0 {
				fmt.Fprintf(b, "Resolved to: %s (when enriched)\n", oneLine(strings.Join(addrs, ", ")))
			} else {
				b.WriteString("Resolved to: no address records (when enriched)\n")
			}
		case watcher.NotFound:
			b.WriteString("Resolved to: none (NXDOMAIN when enriched)\n")
		default:
			b.WriteString("Resolved to: unknown (the DNS lookup failed)\n")
		}
		for _, d := range en.DNS {
			if len(d.NS) > 0 {
				fmt.Fprintf(b, "Name servers: %s\n", oneLine(strings.Join(d.NS, ", ")))
				break
			}
		}
	}
}

func composeMail(rep *Reporter, d *draft, dest string, ev *Evidence, opts PrepareOptions) ([]byte, error) {
	c := ev.Case
	org := cmpOr(rep.Organization, rep.Name)
	kind := map[string]string{"phishing": "Phishing", "fraud": "Fraud"}[d.abuseType]
	subject := fmt.Sprintf("%s - %s - Reported by %s", kind, Defang(c.Registrable), oneLine(org))
	var body strings.Builder
	fmt.Fprintf(&body, "Dear %s abuse team,\n\n", oneLine(orUnknown(d.desk)))
	switch dest {
	case store.DestRegistrar:
		fmt.Fprintf(&body, "We report a domain registered through you that is used for a technical-support scam impersonating %s. ", oneLine(orUnknown(c.Brand)))
		body.WriteString("We ask you to take appropriate action under your abuse policy (RAA section 3.18).\n\n")
	case store.DestHosting:
		fmt.Fprintf(&body, "We report a site hosted on your network (%s) that is used for a technical-support scam impersonating %s. ",
			oneLine(ev.Capture.Hosting.Address), oneLine(orUnknown(c.Brand)))
		body.WriteString("We ask you to take the content down under your acceptable use policy.\n\n")
	}
	writeFacts(&body, ev, opts, d.to)
	var attached []*store.Artefact
	if ev.Capture != nil {
		body.WriteString("\nEvidence attached:\n")
		for _, s := range orderedShots(ev) {
			if a := ev.Artefact(s.Screenshot); a != nil && len(a.Data) <= maxEvidenceItem {
				attached = append(attached, a)
				fmt.Fprintf(&body, "- %s: screenshot as %s (the band on top states the URL, the UTC time and the serving address), SHA-256 %s\n",
					screenshotName(s), s.Profile, a.SHA256)
			}
		}
		body.WriteString("- xarf.json: this report as X-ARF v4, with the evidence and its SHA-256\n")
	}
	sender := rep.Name
	if rep.Organization != "" {
		sender += ", " + rep.Organization
	}
	fmt.Fprintf(&body, "\nReported by %s <%s>", oneLine(sender), rep.Email)
	if rep.OnBehalfOf != "" {
		fmt.Fprintf(&body, " on behalf of %s", oneLine(rep.OnBehalfOf))
	}
	body.WriteString(".\n")
	if rep.Phone != "" {
		fmt.Fprintf(&body, "Phone: %s\n", oneLine(rep.Phone))
	}
	if rep.Website != "" {
		fmt.Fprintf(&body, "Web: %s\n", oneLine(rep.Website))
	}

	xarf, err := json.MarshalIndent(xarfReport(rep, d, dest, ev, opts), "", "  ")
	if err != nil {
		return nil, err
	}
	var msg bytes.Buffer
	from := mail.Address{Name: oneLine(sender), Address: rep.Email}
	rcpt := mail.Address{Name: oneLine(orUnknown(d.desk)) + " abuse", Address: d.to}
	mw := multipart.NewWriter(&msg)
	for _, kv := range [][2]string{
		{"From", from.String()},
		{"To", rcpt.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", subject)},
		{"Date", opts.Now.Format(time.RFC1123Z)},
		{"Message-ID", d.messageID},
		{"MIME-Version", "1.0"},
		{"X-ARF", "yes"},
	} {
		fmt.Fprintf(&msg, "%s: %s\r\n", kv[0], kv[1])
	}
	fmt.Fprintf(&msg, "Content-Type: multipart/mixed; boundary=%q\r\n\r\n", mw.Boundary())
	textPart, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {"quoted-printable"},
	})
	if err != nil {
		return nil, err
	}
	qp := quotedprintable.NewWriter(textPart)
	qp.Write([]byte(strings.ReplaceAll(body.String(), "\n", "\r\n")))
	qp.Close()
	for i, a := range attached {
		s := orderedShots(ev)
		name := "screenshot.png"
		if i < len(s) {
			name = screenshotName(s[i])
		}
		if err := attach(mw, "image/png", name, a.Data); err != nil {
			return nil, err
		}
	}
	if err := attach(mw, "application/json", "xarf.json", xarf); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return msg.Bytes(), nil
}

// orderedShots are the capture's shots with a screenshot, the one that shows the abuse first.
func orderedShots(ev *Evidence) []watcher.Shot {
	if ev.Capture == nil {
		return nil
	}
	var out []watcher.Shot
	if ev.Shot != nil && ev.Shot.Screenshot != "" && ev.Artefact(ev.Shot.Screenshot) != nil {
		out = append(out, *ev.Shot)
	}
	for _, s := range ev.Capture.Shots {
		if s.Screenshot != "" && (ev.Shot == nil || s.Profile != ev.Shot.Profile) && ev.Artefact(s.Screenshot) != nil {
			out = append(out, s)
		}
	}
	return out
}

func screenshotName(s watcher.Shot) string { return "screenshot-" + slug(s.Profile, "") + ".png" }

func attach(mw *multipart.Writer, media, name string, data []byte) error {
	part, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {media + "; name=\"" + name + "\""},
		"Content-Disposition":       {"attachment; filename=\"" + name + "\""},
		"Content-Transfer-Encoding": {"base64"},
	})
	if err != nil {
		return err
	}
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		part.Write([]byte(enc[:76] + "\r\n"))
		enc = enc[76:]
	}
	_, err = part.Write([]byte(enc + "\r\n"))
	return err
}

// netcraftBody is the report API's request: the reporter and the URLs with the reason.
func netcraftBody(rep *Reporter, ev *Evidence) ([]byte, error) {
	reason := fmt.Sprintf("Technical-support scam impersonating %s", orUnknown(ev.Case.Brand))
	if ev.Shot != nil && len(ev.Shot.Phones) > 0 {
		reason += "; shows the phone number " + ev.Shot.Phones[0].E164
	}
	if ev.Capture != nil && ev.Capture.Cloaked {
		reason += "; cloaked: " + ev.Capture.Cloaking
	}
	type u struct {
		URL    string `json:"url"`
		Reason string `json:"reason"`
	}
	body := struct {
		Email string `json:"email"`
		URLs  []u    `json:"urls"`
	}{Email: rep.Email}
	for _, url := range reportedURLs(ev) {
		body.URLs = append(body.URLs, u{URL: url, Reason: oneLine(reason)})
	}
	return json.MarshalIndent(body, "", "  ")
}

// safeBrowsingPacket is what an analyst pastes into Safe Browsing's form.
func safeBrowsingPacket(ev *Evidence, opts PrepareOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Google Safe Browsing report (submit by hand at %s)\n\n", SafeBrowsingReportURL)
	fmt.Fprintf(&b, "URL to paste:\n%s\n\n", reportedURLs(ev)[0])
	b.WriteString("Additional details to paste:\n")
	var facts strings.Builder
	writeFacts(&facts, ev, opts, SafeBrowsingReportURL)
	b.WriteString(facts.String())
	b.WriteString("\nAfter submitting, record it: helpwatch abuse ack ID --state sent --note \"submitted to Safe Browsing\"\n")
	return b.String()
}
