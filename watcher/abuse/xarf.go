package abuse

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// maxEvidenceItem is X-ARF v4's bound on one evidence item (5 MB).
const maxEvidenceItem = 5 << 20

// xarfContact is X-ARF's contact_info: organisation, e-mail and the domain that vouches for it.
type xarfContact struct {
	Org     string `json:"org"`
	Contact string `json:"contact"`
	Domain  string `json:"domain"`
}

type xarfEvidence struct {
	ContentType string `json:"content_type"`
	Description string `json:"description,omitempty"`
	Payload     string `json:"payload"`
	Hash        string `json:"hash"`
	Size        int    `json:"size"`
}

type xarfCertificate struct {
	Issuer      string `json:"issuer,omitempty"`
	Subject     string `json:"subject,omitempty"`
	ValidFrom   string `json:"valid_from,omitempty"`
	ValidTo     string `json:"valid_to,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

type xarfWhois struct {
	CreatedDate           string `json:"created_date,omitempty"`
	RegistrarAbuseContact string `json:"registrar_abuse_contact,omitempty"`
}

// xarfDocument is an X-ARF v4 report of category content, type phishing or fraud.
type xarfDocument struct {
	XARFVersion        string           `json:"xarf_version"`
	ReportID           string           `json:"report_id"`
	Timestamp          string           `json:"timestamp"`
	Reporter           xarfContact      `json:"reporter"`
	Sender             xarfContact      `json:"sender"`
	SourceIdentifier   string           `json:"source_identifier"`
	Category           string           `json:"category"`
	Type               string           `json:"type"`
	EvidenceSource     string           `json:"evidence_source"`
	Evidence           []xarfEvidence   `json:"evidence,omitempty"`
	Tags               []string         `json:"tags,omitempty"`
	Confidence         float64          `json:"confidence"`
	Description        string           `json:"description,omitempty"`
	URL                string           `json:"url"`
	Domain             string           `json:"domain,omitempty"`
	Registrar          string           `json:"registrar,omitempty"`
	Nameservers        []string         `json:"nameservers,omitempty"`
	VerifiedAt         string           `json:"verified_at,omitempty"`
	VerificationMethod string           `json:"verification_method"`
	TargetBrand        string           `json:"target_brand,omitempty"`
	HostingProvider    string           `json:"hosting_provider,omitempty"`
	CountryCode        string           `json:"country_code,omitempty"`
	SSLCertificate     *xarfCertificate `json:"ssl_certificate,omitempty"`
	Whois              *xarfWhois       `json:"whois,omitempty"`
	// Phishing reports name the site cloned and the redirects; fraud reports their kind.
	ClonedSite    string   `json:"cloned_site,omitempty"`
	RedirectChain []string `json:"redirect_chain,omitempty"`
	FraudType     string   `json:"fraud_type,omitempty"`
}

// uuidFrom makes a version-4-shaped UUID from a message id: the same report always has the
// same X-ARF id, so a desk can tell a resend from a new report.
func uuidFrom(s string) string {
	b := sha256.Sum256([]byte(s))
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func xarfReport(rep *Reporter, d *draft, dest string, ev *Evidence, opts PrepareOptions) xarfDocument {
	c := ev.Case
	domain := rep.Email[strings.LastIndexByte(rep.Email, '@')+1:]
	who := xarfContact{Org: oneLine(cmpOr(rep.Organization, rep.Name)), Contact: rep.Email, Domain: strings.ToLower(domain)}
	_, last := observedWindow(ev)
	if last.IsZero() {
		last = opts.Now
	}
	urls := reportedURLs(ev)
	doc := xarfDocument{
		XARFVersion: "4.0.0", ReportID: uuidFrom(d.messageID), Timestamp: last.UTC().Format(time.RFC3339),
		Reporter: who, Sender: who, SourceIdentifier: c.Registrable, Category: "content", Type: d.abuseType,
		EvidenceSource: "automated_discovery", Confidence: float64(min(max(c.Score.Score, 0), 100)) / 100,
		URL: urls[0], Domain: c.Registrable, VerificationMethod: "automated_crawler", TargetBrand: c.Brand,
		Description: oneLine(fmt.Sprintf("Technical-support scam impersonating %s", orUnknown(c.Brand))),
	}
	if ev.Shot == nil {
		doc.VerificationMethod = "manual"
		doc.EvidenceSource = "researcher_analysis"
	}
	if c.Brand != "" {
		doc.Tags = append(doc.Tags, "brand:"+tagValue(c.Brand))
	}
	doc.Tags = append(doc.Tags, "scam:tech-support")
	if ev.Capture != nil && ev.Capture.Cloaked {
		doc.Tags = append(doc.Tags, "evasion:cloaking")
	}
	if en := c.Enrichment; en != nil {
		reg := en.Registration
		if reg.State == watcher.Found {
			doc.Registrar = reg.Registrar
			w := &xarfWhois{RegistrarAbuseContact: reg.AbuseEmail}
			if !reg.Created.IsZero() {
				w.CreatedDate = reg.Created.UTC().Format(time.RFC3339)
			}
			if _, why := checkedAddress(reg.AbuseEmail, "none"); why != "" {
				w.RegistrarAbuseContact = ""
			}
			doc.Whois = w
			doc.Nameservers = reg.NameServers
		}
	}
	if s := ev.Shot; s != nil {
		doc.VerifiedAt = s.At.UTC().Format(time.RFC3339)
		if h := ev.Capture.Hosting; h != nil && h.State == watcher.Found {
			doc.HostingProvider = hostingName(h)
			if len(h.Country) == 2 {
				doc.CountryCode = h.Country
			}
		}
		if dest == store.DestHosting && ev.Capture.Hosting != nil {
			// A hosting desk finds the abuse by its address.
			doc.SourceIdentifier = ev.Capture.Hosting.Address
		}
		if t := s.TLS; t != nil {
			doc.SSLCertificate = &xarfCertificate{Issuer: t.Issuer, Subject: t.Subject, Fingerprint: t.SHA256,
				ValidFrom: t.NotBefore.UTC().Format(time.RFC3339), ValidTo: t.NotAfter.UTC().Format(time.RFC3339)}
		}
		for _, shot := range orderedShots(ev) {
			if a := ev.Artefact(shot.Screenshot); a != nil && len(a.Data) <= maxEvidenceItem {
				doc.Evidence = append(doc.Evidence, xarfEvidence{ContentType: "image/png", Payload: base64.StdEncoding.EncodeToString(a.Data),
					Hash: "sha256:" + a.SHA256, Size: len(a.Data),
					Description: oneLine(fmt.Sprintf("Screenshot as %s at %s from %s", shot.Profile, shot.At.UTC().Format(utcFormat), shot.Address))})
			}
		}
		if a := ev.Artefact(s.HTML); a != nil && len(a.Data) <= maxEvidenceItem {
			doc.Evidence = append(doc.Evidence, xarfEvidence{ContentType: "text/html", Payload: base64.StdEncoding.EncodeToString(a.Data),
				Hash: "sha256:" + a.SHA256, Size: len(a.Data), Description: "The page as served to " + s.Profile})
		}
	}
	if d.abuseType == "phishing" {
		doc.ClonedSite = realSite(opts.Rules, c.Brand)
		if ev.Shot != nil {
			doc.RedirectChain = ev.Shot.Redirects
		}
	} else {
		doc.FraudType = "tech_support"
	}
	return doc
}

// tagValue fits a brand into X-ARF's tag syntax (lower case letters, digits, _ + -).
func tagValue(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '+', r == '-':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}
