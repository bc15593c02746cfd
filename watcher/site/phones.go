package site

import (
	"errors"
	"regexp"
	"sort"
	"strings"

	"github.com/nyaruka/phonenumbers"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/internal/safe"
)

var (
	// reTel finds tel: links in raw text (JSX, templates).
	reTel  = regexp.MustCompile(`(?i)tel:\s*([+0-9][0-9 ().+-]{5,24}[0-9])`)
	reHost = regexp.MustCompile(`(?i)\b((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:to|ru|com|net|org|io|chat|me|app|co|support|help))\b`)
)

// Phones finds the valid phone numbers of a page: tel: links first, then the text. Numbers
// without a country code are read as North American (the scams this tool follows target the
// US and Canada first).
func Phones(tel []string, text string) []rules.SitePhone {
	seen := map[string]bool{}
	var out []rules.SitePhone
	add := func(raw, source string) {
		if len(out) >= 32 {
			return
		}
		digits := 0
		for _, c := range raw {
			if c >= '0' && c <= '9' {
				digits++
			}
		}
		if digits < 10 || digits > 15 {
			return
		}
		var e164 string
		var tollFree bool
		// phonenumbers reads attacker-written text; a crash in it loses this candidate only.
		err := safe.Do("phonenumbers", func() error {
			num, err := phonenumbers.Parse(strings.TrimSpace(raw), "US")
			if err != nil || !phonenumbers.IsValidNumber(num) {
				return errors.New("not a number")
			}
			e164, tollFree = phonenumbers.Format(num, phonenumbers.E164), phonenumbers.GetNumberType(num) == phonenumbers.TOLL_FREE
			return nil
		})
		if err != nil || seen[e164] {
			return
		}
		seen[e164] = true
		out = append(out, rules.SitePhone{E164: e164, TollFree: tollFree, Source: source})
	}
	for _, t := range tel {
		add(t, "tel")
	}
	for _, c := range phoneCandidates(text, 256) {
		add(c, "text")
	}
	return out
}

// hostsIn finds host names mentioned in code or text (chat widgets are often loaded by inline
// scripts).
func hostsIn(s string) []string {
	set := map[string]bool{}
	for _, m := range reHost.FindAllStringSubmatch(s, 512) {
		set[strings.ToLower(m[1])] = true
	}
	return keys(set)
}

func sortStrings(s []string) { sort.Strings(s) }

// phoneCandidates finds what could be phone numbers in text: an optional '+', then digits in
// groups separated by single spaces, dots, dashes or parentheses, 10 to 15 digits in all.
// phonenumbers' own matcher is a stub, so candidates are found here (one pass, no regular
// expression: pages are large) and validated by phonenumbers.Parse.
func phoneCandidates(text string, limit int) []string {
	var out []string
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	isSep := func(c byte) bool { return c == ' ' || c == '.' || c == '-' || c == '(' || c == ')' || c == '\u00a0' }
	for i := 0; i < len(text) && len(out) < limit; i++ {
		c := text[i]
		if !(isDigit(c) || c == '+' || c == '(') || (i > 0 && (isDigit(text[i-1]) || text[i-1] == '+')) {
			continue
		}
		digits, seps, end := 0, 0, i
		for j := i; j < len(text) && j-i < 24; j++ {
			switch {
			case isDigit(text[j]):
				digits++
				seps = 0
				end = j + 1
			case (text[j] == '+' && j == i) || isSep(text[j]):
				seps++
				if seps > 2 {
					j = len(text)
				}
			default:
				j = len(text)
			}
		}
		if digits >= 10 && digits <= 15 && (end == len(text) || !isDigit(text[end])) {
			out = append(out, text[i:end])
			i = end - 1
		}
	}
	return out
}
