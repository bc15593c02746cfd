// Package abuse turns findings into abuse reports a registrar can act on without asking back:
// one RFC 5322 message per registrar abuse desk with the facts for every domain and a JSON
// attachment (Prepare), sent once and only once over SMTP (Send), and followed up by re-checking
// the reported domains for takedowns (Status).
package abuse

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
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
	ReportedCases(ctx context.Context) (map[string]bool, error)
	RecordAbuseReport(ctx context.Context, r *store.AbuseReport) error
}

// PrepareOptions choose what to report.
type PrepareOptions struct {
	Since      time.Time
	MinVerdict rules.Verdict // default alert; the revised verdict counts when there is one
	Outbox     string
	Now        time.Time
}

// Unreportable is a domain that could not be put in a message, and why.
type Unreportable struct {
	Domain string `json:"domain"`
	Reason string `json:"reason"`
}

// Prepared is what Prepare wrote.
type Prepared struct {
	Messages     []*store.AbuseReport
	Unreportable []Unreportable
	ListFile     string // the file listing the unreportable domains, if any
	// Held are the cases an analyst's label keeps out of the mail: benign ones never go, unsure
	// ones wait for a decision.
	Held []Unreportable
}

// Prepare writes one message per registrar abuse contact for the reportable cases not yet in
// any report, records each message in the store, and lists the cases without a usable abuse
// contact (with the reason) in a text file in the outbox. Labels are obeyed: a case labeled
// benign is never reported, an unsure one is held, a scam one is reported whatever its score.
func Prepare(ctx context.Context, src Source, rep *Reporter, opts PrepareOptions) (*Prepared, error) {
	if opts.MinVerdict == "" {
		opts.MinVerdict = rules.VerdictAlert
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now().UTC()
	}
	if err := os.MkdirAll(opts.Outbox, 0o755); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	found, err := src.Cases(ctx, store.Query{Since: opts.Since})
	if err != nil {
		return nil, err
	}
	done, err := src.ReportedCases(ctx)
	if err != nil {
		return nil, err
	}
	type group struct {
		registrar, email string
		cases            []*watcher.Case
	}
	groups := map[string]*group{}
	out := &Prepared{}
	for i := range found {
		c := &found[i]
		if done[c.Registrable] {
			continue
		}
		ok, held := c.Reportable(opts.MinVerdict)
		if held != "" {
			out.Held = append(out.Held, Unreportable{Domain: c.Registrable, Reason: held})
			continue
		}
		if !ok {
			continue
		}
		email, why := abuseAddress(c)
		if why != "" {
			out.Unreportable = append(out.Unreportable, Unreportable{Domain: c.Registrable, Reason: why})
			continue
		}
		key := strings.ToLower(email)
		g := groups[key]
		if g == nil {
			g = &group{registrar: c.Enrichment.Registration.Registrar, email: email}
			groups[key] = g
		}
		g.cases = append(g.cases, c)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := groups[k]
		sort.Slice(g.cases, func(i, j int) bool { return g.cases[i].Registrable < g.cases[j].Registrable })
		msg, err := compose(rep, g.registrar, g.email, g.cases, opts.Now)
		if err != nil {
			return out, err
		}
		file := filepath.Join(opts.Outbox, fmt.Sprintf("%s-%s-%s.eml", opts.Now.Format("20060102"), slug(g.registrar, g.email), msg.shortID))
		if err := writeFileAtomic(file, msg.raw); err != nil {
			return out, err
		}
		ar := &store.AbuseReport{MessageID: msg.messageID, Registrar: orUnknown(g.registrar), Recipient: g.email, File: file, PreparedAt: opts.Now}
		for _, c := range g.cases {
			ar.Names = append(ar.Names, c.Registrable)
		}
		if err := src.RecordAbuseReport(ctx, ar); err != nil {
			os.Remove(file) // not recorded: it must not be sent
			return out, err
		}
		out.Messages = append(out.Messages, ar)
	}
	if len(out.Unreportable) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "Domains that could not be reported on %s (no usable abuse contact):\n\n", opts.Now.Format(time.RFC3339))
		for _, u := range out.Unreportable {
			fmt.Fprintf(&b, "%s\t%s\n", output.Printable(u.Domain), output.Printable(u.Reason))
		}
		out.ListFile = filepath.Join(opts.Outbox, "unreportable-"+opts.Now.Format("20060102-150405")+".txt")
		if err := writeFileAtomic(out.ListFile, []byte(b.String())); err != nil {
			return out, err
		}
	}
	return out, nil
}

// abuseAddress is the registrar's abuse e-mail, or why there is none to write to.
func abuseAddress(c *watcher.Case) (string, string) {
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
	if reg.AbuseEmail == "" {
		return "", fmt.Sprintf("no abuse contact in the %s answer of %s", orUnknown(reg.Source), orUnknown(reg.Server))
	}
	a, err := mail.ParseAddress(reg.AbuseEmail)
	if err != nil || a.Address != reg.AbuseEmail || strings.ContainsAny(reg.AbuseEmail, "\r\n") {
		return "", fmt.Sprintf("abuse contact %q is not an e-mail address", output.Printable(reg.AbuseEmail))
	}
	return a.Address, ""
}

func orUnknown(s string) string {
	if strings.TrimSpace(s) == "" {
		return "unknown"
	}
	return s
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

type composed struct {
	raw       []byte
	messageID string
	shortID   string
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

// compose builds the message: text body with the facts per domain, JSON attachment.
func compose(rep *Reporter, registrar, to string, fs []*watcher.Case, now time.Time) (*composed, error) {
	h := sha256.New()
	for _, c := range fs {
		h.Write([]byte(c.Registrable + "\n"))
	}
	h.Write([]byte(now.Format(time.RFC3339Nano)))
	sum := hex.EncodeToString(h.Sum(nil))
	fromDomain := rep.Email[strings.LastIndexByte(rep.Email, '@')+1:]
	c := &composed{shortID: sum[:10], messageID: "<helpwatch." + sum[:32] + "@" + fromDomain + ">"}

	brands := map[string]bool{}
	for _, f := range fs {
		if f.Brand != "" {
			brands[f.Brand] = true
		}
	}
	brandList := make([]string, 0, len(brands))
	for b := range brands {
		brandList = append(brandList, b)
	}
	sort.Strings(brandList)
	what := "printer brands"
	if len(brandList) > 0 {
		what = strings.Join(brandList, ", ")
	}
	plural := "s"
	if len(fs) == 1 {
		plural = ""
	}
	subject := fmt.Sprintf("Abuse report: %d domain%s impersonating %s for tech-support scams", len(fs), plural, oneLine(what))

	var body strings.Builder
	sender := rep.Name
	if rep.Organization != "" {
		sender += ", " + rep.Organization
	}
	fmt.Fprintf(&body, "Dear %s abuse team,\n\n", oneLine(orUnknown(registrar)))
	fmt.Fprintf(&body, "We report %d domain%s registered through you that impersonate %s to run helpline (technical-support) scams: ", len(fs), plural, oneLine(what))
	body.WriteString("the sites pose as the brand's printer setup or support pages and push victims to call a phone number, where they are charged for fake support and asked for remote access to their computers.\n\n")
	body.WriteString("We ask you to suspend these domains under your abuse policy (RAA 3.18). The facts for each are below and, machine-readable, in the attached JSON file.\n\n")
	for i, c := range fs {
		writeDomainFacts(&body, i+1, c)
	}
	fmt.Fprintf(&body, "Reported by %s <%s>", oneLine(sender), rep.Email)
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
	body.WriteString("Found with helpwatch from Certificate Transparency logs; the scores and reasons come from its published rules.\n")

	attachment, err := json.MarshalIndent(attachmentOf(rep, registrar, to, fs, now), "", "  ")
	if err != nil {
		return nil, err
	}

	var msg bytes.Buffer
	from := mail.Address{Name: oneLine(sender), Address: rep.Email}
	rcpt := mail.Address{Name: oneLine(registrar) + " abuse", Address: to}
	headers := [][2]string{
		{"From", from.String()},
		{"To", rcpt.String()},
		{"Subject", mime.QEncoding.Encode("utf-8", subject)},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", c.messageID},
		{"MIME-Version", "1.0"},
		{"X-Helpwatch-Domains", fmt.Sprint(len(fs))},
	}
	mw := multipart.NewWriter(&msg)
	for _, kv := range headers {
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
	jsonPart, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"application/json; name=\"helpwatch-report.json\""},
		"Content-Disposition":       {"attachment; filename=\"helpwatch-report.json\""},
		"Content-Transfer-Encoding": {"base64"},
	})
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString(attachment)
	for len(enc) > 76 {
		jsonPart.Write([]byte(enc[:76] + "\r\n"))
		enc = enc[76:]
	}
	jsonPart.Write([]byte(enc + "\r\n"))
	if err := mw.Close(); err != nil {
		return nil, err
	}
	c.raw = msg.Bytes()
	return c, nil
}

func writeDomainFacts(b *strings.Builder, n int, c *watcher.Case) {
	fmt.Fprintf(b, "%d. %s\n", n, oneLine(c.Registrable))
	var names, shown []string
	for _, nm := range c.Names {
		names = append(names, nm.Name)
		if nm.Unicode != "" {
			shown = append(shown, nm.Unicode)
		}
	}
	if len(names) > 1 || (len(names) == 1 && names[0] != c.Registrable) {
		fmt.Fprintf(b, "   Names in certificates: %s\n", oneLine(strings.Join(names, ", ")))
	}
	if len(shown) > 0 {
		fmt.Fprintf(b, "   Displayed as: %s\n", oneLine(strings.Join(shown, ", ")))
	}
	fmt.Fprintf(b, "   Impersonates: %s (score %d of 100, %s)\n", oneLine(orUnknown(c.Brand)), c.Score.Score, c.Score.Verdict)
	for _, r := range c.Score.Reasons {
		if r.Points != 0 {
			fmt.Fprintf(b, "   Why: %s\n", oneLine(r.Detail))
		}
	}
	ct := c.CTSeen
	if ct.IsZero() {
		ct = c.FirstSeen
	}
	if c.Cert.LogURL != "" || c.Cert.Fingerprint != "" {
		fmt.Fprintf(b, "   Certificate: appeared in Certificate Transparency %s, log %s, index %d, issuer %s, SHA-1 fingerprint %s\n",
			ct.UTC().Format("2006-01-02 15:04 UTC"), oneLine(orUnknown(c.Cert.LogURL)), c.Cert.Index, oneLine(orUnknown(c.Cert.Issuer)), oneLine(orUnknown(c.Cert.Fingerprint)))
	} else {
		fmt.Fprintf(b, "   First seen: %s (from a domain feed; no certificate)\n", c.FirstSeen.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if en := c.Enrichment; en != nil {
		reg := en.Registration
		created := "unknown"
		if !reg.Created.IsZero() {
			created = reg.Created.UTC().Format(time.DateOnly)
		}
		fmt.Fprintf(b, "   Registered: %s (registrar %s", created, oneLine(orUnknown(reg.Registrar)))
		if reg.RegistrarIANAID != "" {
			fmt.Fprintf(b, ", IANA ID %s", oneLine(reg.RegistrarIANAID))
		}
		fmt.Fprintf(b, "; per %s)\n", oneLine(orUnknown(reg.Source)))
		addrs := c.Addresses()
		switch {
		case len(addrs) > 0:
			fmt.Fprintf(b, "   Resolves to: %s\n", oneLine(strings.Join(addrs, ", ")))
		case en.Lookups() == watcher.NotFound:
			b.WriteString("   Resolves to: nothing (NXDOMAIN at the time of the check)\n")
		default:
			b.WriteString("   Resolves to: no address at the time of the check\n")
		}
		for _, d := range en.DNS {
			if len(d.NS) > 0 {
				fmt.Fprintf(b, "   Name servers: %s\n", oneLine(strings.Join(d.NS, ", ")))
				break
			}
		}
	}
	sc := c.Site()
	switch {
	case sc == nil:
		b.WriteString("   Phone numbers on the site: none recorded (site not checked)\n")
		b.WriteString("   Clone evidence: none recorded (site not checked)\n\n")
		return
	case sc.Verdict == rules.SiteUnreachable:
		fmt.Fprintf(b, "   Site: did not answer when checked %s\n\n", sc.At.UTC().Format("2006-01-02 15:04 UTC"))
		return
	}
	var phones []string
	for _, p := range sc.Phones {
		s := p.E164
		if p.TollFree {
			s += " (toll-free)"
		}
		phones = append(phones, s)
	}
	if len(phones) == 0 {
		phones = []string{"none"}
	}
	fmt.Fprintf(b, "   Phone numbers on the site: %s\n", oneLine(strings.Join(phones, ", ")))
	fmt.Fprintf(b, "   Site check %s: %s, content score %d of 100; page %s (HTTP %d)\n", sc.At.UTC().Format("2006-01-02 15:04 UTC"),
		sc.Verdict, sc.Score, oneLine(sc.URL), sc.Status)
	var evidence []string
	for _, r := range sc.Reasons {
		evidence = append(evidence, r.Detail)
	}
	if len(evidence) > 0 {
		fmt.Fprintf(b, "   Clone evidence: %s\n", oneLine(strings.Join(evidence, "; ")))
	}
	if sc.SimilarTo != "" {
		fmt.Fprintf(b, "   Similar to: %s\n", oneLine(sc.SimilarTo))
	}
	b.WriteString("\n")
}

type attachmentDomain struct {
	Domain       string                   `json:"domain"`
	Names        []string                 `json:"names"`
	Unicode      string                   `json:"unicode,omitempty"`
	Brand        string                   `json:"brand"`
	Score        int                      `json:"score"`
	Verdict      rules.Verdict            `json:"verdict"`
	Reasons      []rules.Reason           `json:"reasons"`
	RulesVersion string                   `json:"rules_version"`
	FirstSeen    time.Time                `json:"first_seen"`
	CTSeen       time.Time                `json:"ct_seen,omitzero"`
	Certificate  watcher.Certificate      `json:"certificate"`
	Registration *watcher.Registration    `json:"registration,omitempty"`
	DNS          []watcher.DNSFacts       `json:"dns,omitempty"`
	Site         *watcher.SiteCheckResult `json:"site,omitempty"`
}

type attachmentDoc struct {
	Reporter   *Reporter          `json:"reporter"`
	PreparedAt time.Time          `json:"prepared_at"`
	Registrar  string             `json:"registrar"`
	AbuseEmail string             `json:"abuse_email"`
	Domains    []attachmentDomain `json:"domains"`
}

func attachmentOf(rep *Reporter, registrar, to string, cs []*watcher.Case, now time.Time) attachmentDoc {
	doc := attachmentDoc{Reporter: rep, PreparedAt: now.UTC(), Registrar: registrar, AbuseEmail: to}
	for _, c := range cs {
		d := attachmentDomain{Domain: c.Registrable, Brand: c.Brand, Score: c.Score.Score, Verdict: c.Score.Verdict, Reasons: c.Score.Reasons,
			RulesVersion: c.Score.RulesVersion, FirstSeen: c.FirstSeen.UTC(), CTSeen: c.CTSeen, Certificate: c.Cert, Site: c.Site()}
		for _, n := range c.Names {
			d.Names = append(d.Names, n.Name)
			if n.Name == c.Registrable {
				d.Unicode = n.Unicode
			}
		}
		if c.Enrichment != nil {
			d.Registration, d.DNS = &c.Enrichment.Registration, c.Enrichment.DNS
		}
		doc.Domains = append(doc.Domains, d)
	}
	return doc
}

// ErrNotPrepared is returned by Send for a message the store has no record of.
var ErrNotPrepared = errors.New("not prepared by this database")
