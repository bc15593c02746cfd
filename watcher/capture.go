package watcher

import (
	"time"

	"github.com/helpwatch/helpwatch/rules"
)

// Capture is the kept evidence of one site at one moment: what each visitor profile was shown,
// with the artefacts (screenshots, pages, certificates) named by their SHA-256. It is what an
// abuse report may say was observed, and nothing else is.
type Capture struct {
	ID     int64     `json:"id,omitempty"`
	CaseID int64     `json:"case_id,omitempty"`
	Name   string    `json:"name"`
	At     time.Time `json:"captured_at"`
	// Shots are the visits, one per profile, in the order they were made.
	Shots []Shot `json:"shots"`
	// Verdict is the strongest verdict among the shots (rules.StrongerSite).
	Verdict rules.SiteVerdict `json:"verdict"`
	Score   int               `json:"content_score"`
	// Cloaked says the site showed a flagged page to some profiles and not to others; Cloaking
	// says to whom.
	Cloaked  bool   `json:"cloaked"`
	Cloaking string `json:"cloaking,omitempty"`
	// Hosting is the network of the address the site was served from.
	Hosting *Hosting `json:"hosting,omitempty"`
	// Dropped names artefacts that were made but not kept (the case's evidence budget was
	// used up); their hashes stay in the shots.
	Dropped []string `json:"dropped,omitempty"`
}

// Shot is what one visitor profile was shown.
type Shot struct {
	Profile   string              `json:"profile"`
	UserAgent string              `json:"user_agent"`
	Referer   string              `json:"referer,omitempty"`
	At        time.Time           `json:"at"`
	URL       string              `json:"url"`
	FinalURL  string              `json:"final_url,omitempty"`
	Redirects []string            `json:"redirects,omitempty"`
	Address   string              `json:"address,omitempty"` // the IP the page was served from
	Status    int                 `json:"status,omitempty"`
	Headers   map[string][]string `json:"headers,omitempty"`
	TLS       *CertificateSeen    `json:"tls,omitempty"`
	Title     string              `json:"title,omitempty"`
	Verdict   rules.SiteVerdict   `json:"verdict"`
	Score     int                 `json:"content_score"`
	Brand     string              `json:"brand,omitempty"`
	// Indicators and Phones are what the page showed this profile.
	Indicators []string          `json:"indicators"`
	Phones     []rules.SitePhone `json:"phones"`
	// Payment, PersonalData and RemoteAccess say the page asked for them (an abuse desk
	// files such a page as phishing rather than fraud).
	AsksFor []string `json:"asks_for,omitempty"`
	// HTML and Screenshot are the SHA-256 of the page as served (and as built by its scripts,
	// when rendered) and of the PNG screenshot; empty when none was made.
	HTML         string `json:"html_sha256,omitempty"`
	RenderedHTML string `json:"rendered_html_sha256,omitempty"`
	Screenshot   string `json:"screenshot_sha256,omitempty"`
	// Blank says the page had (next to) nothing to read.
	Blank bool   `json:"blank"`
	Error string `json:"error,omitempty"`
}

// CertificateSeen is the certificate the live site presented.
type CertificateSeen struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	DNSNames  []string  `json:"dns_names,omitempty"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SHA256    string    `json:"sha256"` // of the DER, which is kept as an artefact
}

// Hosting is the network an address belongs to, from its regional registry's RDAP.
type Hosting struct {
	Address    string      `json:"address"`
	State      LookupState `json:"state"`
	Reason     string      `json:"reason,omitempty"`
	Network    string      `json:"network,omitempty"` // the registry's handle or range
	Name       string      `json:"name,omitempty"`
	Org        string      `json:"org,omitempty"`
	AbuseEmail string      `json:"abuse_email,omitempty"`
	Country    string      `json:"country,omitempty"`
	Source     string      `json:"source,omitempty"` // the RDAP server that answered
}

// Observed reports whether the capture shows abuse an abuse desk can act on: a page some
// profile was shown that the rules judge a clone or a helpline.
func (c *Capture) Observed() bool { return c != nil && c.Verdict.Flagged() }

// FlaggedShot is the shot that shows the abuse (the strongest), nil when none does.
func (c *Capture) FlaggedShot() *Shot {
	var best *Shot
	for i := range c.Shots {
		s := &c.Shots[i]
		if !s.Verdict.Flagged() {
			continue
		}
		if best == nil || rules.StrongerSite(s.Verdict, s.Score, best.Verdict, best.Score) {
			best = s
		}
	}
	return best
}
