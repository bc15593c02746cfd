package watcher

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxFieldBytes bounds a text field taken from the outside world (a certificate's issuer, a
// log's name, a registrar's name): enough for any honest value, and a hostile one cannot fill
// the store.
const MaxFieldBytes = 512

// Unsafe reports whether a rune must not reach a terminal, a spreadsheet or a page as is:
// control characters (C0, DEL, C1: ESC drives terminals, CR and LF forge lines), the line and
// paragraph separators, and the bidirectional controls that reorder what a reader sees
// (U+202E turns "moc.pleh-ph" into something else).
func Unsafe(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
		return true
	case r == '\u2028' || r == '\u2029':
		return true
	case r == '\u061c' || r == '\u200e' || r == '\u200f' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069'):
		return true
	case r == utf8.RuneError:
		return true
	}
	return unicode.Is(unicode.Cc, r)
}

// Clean makes an outside string safe to keep and show: invalid UTF-8 and every Unsafe rune
// become '?', and it is cut to max bytes (on a rune boundary; 0 means no cut). Clean text
// passes through without allocating.
func Clean(s string, max int) string {
	if max > 0 && len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	clean := true
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if Unsafe(r) {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if Unsafe(r) {
			b.WriteByte('?')
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Sanitize cleans the certificate fields of an event where the event is made, so that no
// later stage (store, terminal, CSV, report, mail) sees raw control characters, bidirectional
// controls or invalid UTF-8 from a certstream frame or a log entry. Names are left as given:
// the scorer validates them and a name with such characters is invalid, never stored.
func (e *Event) Sanitize() {
	c := &e.Cert
	c.LogName = Clean(c.LogName, MaxFieldBytes)
	c.LogURL = Clean(c.LogURL, MaxFieldBytes)
	c.Link = Clean(c.Link, MaxFieldBytes)
	c.Issuer = Clean(c.Issuer, MaxFieldBytes)
	c.Fingerprint = Clean(c.Fingerprint, 128)
	c.Serial = Clean(c.Serial, 128)
}

// Sanitize cleans what a registry's or registrar's answer said, where the answer is read.
func (r *Registration) Sanitize() {
	r.Reason = Clean(r.Reason, 2*MaxFieldBytes)
	r.Server = Clean(r.Server, MaxFieldBytes)
	r.Registrar = Clean(r.Registrar, MaxFieldBytes)
	r.RegistrarIANAID = Clean(r.RegistrarIANAID, 32)
	r.AbuseEmail = Clean(r.AbuseEmail, 254)
	r.AbusePhone = Clean(r.AbusePhone, 64)
	for i := range r.NameServers {
		r.NameServers[i] = Clean(r.NameServers[i], 255)
	}
	for i := range r.Statuses {
		r.Statuses[i] = Clean(r.Statuses[i], 128)
	}
}
