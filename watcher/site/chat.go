package site

import (
	"regexp"
	"sort"
)

// chatAccounts find the account of a live-chat widget in script URLs and inline scripts: one
// account on several domains is one operator.
var chatAccounts = []struct {
	service string
	re      *regexp.Regexp
}{
	{"tawk.to", regexp.MustCompile(`tawk\.to/([a-f0-9]{24})`)},
	{"jivochat", regexp.MustCompile(`(?:jivosite\.com|jivo\.ru)/widget/([A-Za-z0-9]{6,16})`)},
	{"tidio", regexp.MustCompile(`tidio\.co/([a-z0-9]{20,40})\.js`)},
	{"crisp", regexp.MustCompile(`CRISP_WEBSITE_ID\s*=\s*["']([0-9a-f-]{36})`)},
	{"zendesk", regexp.MustCompile(`zdassets\.com/ekr/snippet\.js\?key=([0-9a-f-]{36})`)},
	{"zoho-salesiq", regexp.MustCompile(`salesiq\.zoho\.[a-z]+/widget\?wc=([A-Za-z0-9]{16,})`)},
	{"smartsupp", regexp.MustCompile(`_smartsupp\.key\s*=\s*['"]([0-9a-f]{40})`)},
	{"livechat", regexp.MustCompile(`__lc\.license\s*=\s*(\d{6,10})`)},
}

// ChatAccounts returns "service/account" for every chat widget account named in s.
func ChatAccounts(s string) []string {
	set := map[string]bool{}
	for _, c := range chatAccounts {
		for _, m := range c.re.FindAllStringSubmatch(s, 16) {
			set[c.service+"/"+m[1]] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
