// Package export writes cases in the formats security teams share threat data in: MISP events
// (with the standard domain-ip, phishing, x509, whois and phone objects) and STIX 2.1 bundles,
// and pushes MISP events to a MISP instance. Ids are derived from the case (UUIDv5), so a second
// export of the same case updates what the first made instead of duplicating it.
//
// Only what was observed is exported: the certificate from CT, the registration and DNS from
// the enrichment, the pages, numbers and screenshot from the latest capture.
package export

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Item is one case with the evidence an export carries.
type Item struct {
	Case watcher.Case
	// Capture is the case's latest capture (nil when none); Screenshot the PNG of its first
	// shot that has one, named by ScreenshotSHA.
	Capture       *watcher.Capture
	Screenshot    []byte
	ScreenshotSHA string
	// Phones are the numbers its site checks and capture showed (E.164).
	Phones []string
	// TakenDown is when a reported name of the case was seen gone (zero: not seen).
	TakenDown     time.Time
	TakedownState string
}

// Source is what Gather reads.
type Source interface {
	Cases(ctx context.Context, q store.Query) ([]watcher.Case, error)
	Captures(ctx context.Context, caseID int64) ([]watcher.Capture, error)
	Artefact(ctx context.Context, sha string) (*store.Artefact, bool, error)
	ReportedDomains(ctx context.Context, open bool) ([]store.ReportedDomain, error)
}

// Gather reads the cases q selects with their evidence.
func Gather(ctx context.Context, src Source, q store.Query) ([]Item, error) {
	cases, err := src.Cases(ctx, q)
	if err != nil {
		return nil, err
	}
	reported, err := src.ReportedDomains(ctx, false)
	if err != nil {
		return nil, err
	}
	// The first takedown of each reported name.
	firstDown := map[string]store.ReportedDomain{}
	for _, r := range reported {
		if d, ok := firstDown[r.Name]; !r.TakenDownAt.IsZero() && (!ok || r.TakenDownAt.Before(d.TakenDownAt)) {
			firstDown[r.Name] = r
		}
	}
	items := make([]Item, 0, len(cases))
	for i := range cases {
		it := Item{Case: cases[i]}
		caps, err := src.Captures(ctx, it.Case.ID)
		if err != nil {
			return nil, err
		}
		if len(caps) > 0 {
			it.Capture = &caps[0]
			for _, s := range it.Capture.Shots {
				if s.Screenshot == "" {
					continue
				}
				a, ok, err := src.Artefact(ctx, s.Screenshot)
				if err != nil {
					return nil, err
				}
				if ok {
					it.Screenshot, it.ScreenshotSHA = a.Data, s.Screenshot
					break
				}
			}
			for _, s := range it.Capture.Shots {
				for _, p := range s.Phones {
					it.Phones = appendNew(it.Phones, p.E164)
				}
			}
		}
		for _, sc := range it.Case.Sites {
			for _, p := range sc.Phones {
				it.Phones = appendNew(it.Phones, p.E164)
			}
		}
		if d, ok := firstDown[it.Case.Registrable]; ok {
			it.TakenDown, it.TakedownState = d.TakenDownAt, d.TakedownState
		}
		items = append(items, it)
	}
	return items, nil
}

func appendNew(list []string, v string) []string {
	if v == "" || slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

// addresses are the IPv4 addresses the case's names resolved to, and the address a capture
// was served from.
func (it *Item) addresses() []string {
	var out []string
	if en := it.Case.Enrichment; en != nil {
		for _, d := range en.DNS {
			for _, a := range d.A {
				out = appendNew(out, a)
			}
		}
	}
	if it.Capture != nil {
		for _, s := range it.Capture.Shots {
			out = appendNew(out, s.Address)
		}
	}
	return out
}

// siteVerdict is the strongest verdict the case's site checks and capture found.
func (it *Item) siteVerdict() rules.SiteVerdict {
	var rs []rules.SiteResult
	for _, s := range it.Case.Sites {
		rs = append(rs, rules.SiteResult{Verdict: s.Verdict, Score: s.Score})
	}
	if it.Capture != nil {
		rs = append(rs, rules.SiteResult{Verdict: it.Capture.Verdict, Score: it.Capture.Score})
	}
	if best := rules.StrongestSite(rs); best != nil {
		return best.Verdict
	}
	return ""
}

// lastObserved is the latest time anything of the case was observed.
func (it *Item) lastObserved() time.Time {
	t := it.Case.LastSeen
	if en := it.Case.Enrichment; en != nil && en.At.After(t) {
		t = en.At
	}
	for _, s := range it.Case.Sites {
		if s.At.After(t) {
			t = s.At
		}
	}
	if it.Capture != nil && it.Capture.At.After(t) {
		t = it.Capture.At
	}
	if it.TakenDown.After(t) {
		t = it.TakenDown
	}
	return t.UTC()
}

// firstObserved is the case's first certificate in CT (or when it was first read).
func (it *Item) firstObserved() time.Time {
	if !it.Case.CTSeen.IsZero() {
		return it.Case.CTSeen.UTC()
	}
	return it.Case.FirstSeen.UTC()
}

// uuid5 is the name-based UUID (RFC 9562, version 5) of name in namespace.
func uuid5(namespace [16]byte, name string) string {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// parseUUID reads a UUID constant of this package (a malformed one is a programming error).
func parseUUID(s string) [16]byte {
	var u [16]byte
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("export: bad UUID constant " + s)
	}
	copy(u[:], b)
	return u
}

// helpwatchNamespace names the ids helpwatch derives (events, objects, SDOs).
var helpwatchNamespace = parseUUID("4c1e6b2a-9f0d-5e3a-8b7c-2d6f1a9e0b35")
