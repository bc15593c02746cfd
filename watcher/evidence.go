package watcher

import (
	"time"

	"github.com/helpwatch/helpwatch/rules"
)

// SiteEvidence is what one site check of one name saw: the one type a check is made as
// (site.Report.Evidence), stored as (store.SiteCheck is this type) and carried by a case
// (Case.Sites), so nothing a check observed is lost between them.
type SiteEvidence struct {
	Name       string            `json:"name"`
	At         time.Time         `json:"checked_at"`
	URL        string            `json:"url,omitempty"`
	Status     int               `json:"status,omitempty"`
	Title      string            `json:"title,omitempty"`
	Verdict    rules.SiteVerdict `json:"verdict"`
	Score      int               `json:"content_score"`
	Brand      string            `json:"brand,omitempty"`
	Reasons    []rules.Reason    `json:"reasons"`
	Indicators []string          `json:"indicators"`
	Phones     []rules.SitePhone `json:"phones"`
	Chats      []string          `json:"chat_accounts,omitempty"`
	Kit        string            `json:"kit,omitempty"` // the known kit it matches, if any
	SHA256     string            `json:"sha256,omitempty"`
	TLSH       string            `json:"tlsh,omitempty"`
	SimilarTo  string            `json:"similar_to,omitempty"`
	Error      string            `json:"error,omitempty"`
	// Pages are the other pages of the site the verdict was reached on (the contact, support,
	// setup or error pages the landing page links to), each with what it showed on its own.
	Pages []PageEvidence `json:"pages,omitempty"`
	// Body is the landing page as read, kept compressed and bounded by the store; it is not
	// loaded with a case.
	Body []byte `json:"-"`
}

// PageEvidence is what one page of a site showed on its own.
type PageEvidence struct {
	URL        string            `json:"url"`
	Verdict    rules.SiteVerdict `json:"verdict"`
	Score      int               `json:"content_score"`
	Indicators []string          `json:"indicators"`
	Phones     []rules.SitePhone `json:"phones,omitempty"`
}
