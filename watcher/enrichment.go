package watcher

import "time"

// LookupState is the outcome of one lookup. Unknown is not "no": it means the question could
// not be answered (timeout, refused, rate limited, no server for the TLD), and Reason says why.
type LookupState string

const (
	Found    LookupState = "found"
	NotFound LookupState = "not_found"
	Unknown  LookupState = "unknown"
)

// Enrichment is what was learned about a case after it was seen: its registration (once for
// the registrable domain) and the DNS of each of its names.
type Enrichment struct {
	Registrable  string       `json:"registrable"`
	At           time.Time    `json:"at"`
	Registration Registration `json:"registration"`
	DNS          []DNSFacts   `json:"dns"`
}

// DNSFacts are one name's records (A, AAAA, CNAME for the name; NS, MX, TXT for its
// registrable domain) and what they suggest.
type DNSFacts struct {
	Name   string      `json:"name"`
	State  LookupState `json:"state"`
	Reason string      `json:"reason,omitempty"`
	A      []string    `json:"a,omitempty"`
	AAAA   []string    `json:"aaaa,omitempty"`
	CNAME  []string    `json:"cname,omitempty"`
	NS     []string    `json:"ns,omitempty"`
	MX     []string    `json:"mx,omitempty"`
	TXT    []string    `json:"txt,omitempty"`
	// CatchAll: a random label under the registrable domain resolves too (wildcard DNS).
	CatchAll bool `json:"catch_all,omitempty"`
	// ParkedBy names the parking service the name servers or addresses belong to.
	ParkedBy string `json:"parked_by,omitempty"`
}

// Registration is the registry's (or registrar's) record of the registrable domain.
type Registration struct {
	State  LookupState `json:"state"`
	Reason string      `json:"reason,omitempty"`
	Source string      `json:"source,omitempty"` // "rdap" or "whois"
	Server string      `json:"server,omitempty"` // where the answer came from
	// Created is the registration date; zero when the record does not say.
	Created         time.Time `json:"created,omitzero"`
	Registrar       string    `json:"registrar,omitempty"`
	RegistrarIANAID string    `json:"registrar_iana_id,omitempty"`
	AbuseEmail      string    `json:"abuse_email,omitempty"`
	AbusePhone      string    `json:"abuse_phone,omitempty"`
	NameServers     []string  `json:"name_servers,omitempty"`
	Statuses        []string  `json:"statuses,omitempty"`
	// RetryAt, for an unknown answer, is when the server that refused us (rate limit) may be
	// asked again.
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// Lookups summarizes the DNS state of all names: found when any name's DNS answered found,
// not_found when every answer was not_found, unknown otherwise.
func (e *Enrichment) Lookups() LookupState {
	state := Unknown
	for _, d := range e.DNS {
		switch d.State {
		case Found:
			return Found
		case NotFound:
			state = NotFound
		}
	}
	return state
}
