package enrich

import (
	"testing"

	whoisparser "github.com/likexian/whois-parser"

	"github.com/helpwatch/helpwatch/watcher"
)

// FuzzWHOISText: WHOIS answers are written by whoever runs the server; reading one never
// panics and never yields an abuse address with a line break in it.
func FuzzWHOISText(f *testing.F) {
	f.Add("Domain Name: X.COM\nRegistrar: R\nCreation Date: 2026-11-20T09:00:00Z\nRegistrar Abuse Contact Email: a@b.test\n")
	f.Add("E-mail: abuse: abuse@freenom.com, copyright: c@d.test\nabuse-phone: +380445933222\n")
	f.Add("No match for \"X.COM\".\n")
	f.Fuzz(func(t *testing.T, text string) {
		var reg watcher.Registration
		if info, err := whoisparser.Parse(text); err == nil {
			fillFromWHOIS(&reg, &info, text)
		}
		for _, s := range []string{reg.AbuseEmail, reg.AbusePhone, reg.RegistrarIANAID} {
			for _, c := range s {
				if c == '\n' || c == '\r' {
					t.Fatalf("line break in %q", s)
				}
			}
		}
	})
}
