package rules

import (
	"strings"
	"testing"
)

// What makes a page a helpline is a contact pushed as the way to get help, not a phone number:
// the brand's own page copied word for word onto another domain (its footer gives Epson's
// number) and an ordinary shop's contact page are not helplines; a helpline kit for a brand
// the catalog does not hold, and a driver-download kit that only disclaims the brand, are.
func TestSiteVerdictsOfKitsAndOrdinaryPages(t *testing.T) {
	rs := defaultRules(t)
	tollFree := []SitePhone{{E164: "+18004637766", TollFree: true, Source: "text"}}
	cases := []struct {
		name  string
		facts SiteFacts
		want  SiteVerdict
	}{
		{"a brand's blog with its own number in the footer", SiteFacts{Domain: "example.org", Reachable: true, Title: "Epson blog",
			Text: "Epson EcoTank printers save ink. The new Epson WorkForce printer for small offices. Epson printer news. " +
				"To contact Epson, you may write to 3131 Katella Avenue, Los Alamitos, CA 90720 or call 1-800-463-7766.",
			Hosts: []string{"epson.com", "epson.net"}, Phones: tollFree}, SiteBenign},
		{"a shop's contact page", SiteFacts{Domain: "example.org", Reachable: true, Title: "Contact us",
			Text: "Contact us. Our customer service team answers Monday to Friday. Call 1-800-463-7766 or write to us.", Phones: tollFree}, SiteBenign},
		{"a helpline kit for a brand outside the catalog", SiteFacts{Domain: "example.org", Reachable: true, Title: "Antivirus Support",
			Text: "Antivirus not working? Call our certified technicians now for instant support. Toll free 1-800-463-7766. " +
				"Our technical support experts connect with AnyDesk and fix it in minutes. Call now.", Phones: tollFree}, SiteHelpline},
		{"a remote-session kit for a router brand", SiteFacts{Domain: "example.org", Reachable: true, Title: "Router help",
			Text: "Router not connecting? Call now 1-800-463-7766. Download AnyDesk and give the code to our agent to take remote control.", Phones: tollFree}, SiteHelpline},
		{"a driver-download kit behind a disclaimer", SiteFacts{Domain: "example.org", Reachable: true, Title: "HP printer drivers",
			Text: "HP DeskJet 2755e printer driver download for Windows and Mac. Select your HP printer model. " +
				"Disclaimer: we are an independent third-party service provider; all trademarks belong to their respective owners."}, SiteClone},
		{"a driver page without a disclaimer", SiteFacts{Domain: "example.org", Reachable: true, Title: "Drivers",
			Text: "HP DeskJet 2755e printer driver download for Windows and Mac, from HP's site."}, SiteBenign},
	}
	for _, c := range cases {
		res := rs.ScoreSite(&c.facts)
		if res.Verdict != c.want {
			var why []string
			for _, r := range res.Reasons {
				why = append(why, r.Rule+": "+r.Detail)
			}
			t.Errorf("%s: %s (%d), want %s\n%s", c.name, res.Verdict, res.Score, c.want, strings.Join(why, "\n"))
		}
	}
}
