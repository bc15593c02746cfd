package rules

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
	"golang.org/x/text/unicode/norm"
)

const (
	maxNameLen  = 253
	maxLabelLen = 63
	maxLabels   = 127
)

// Name is a certificate or input name after normalization.
type Name struct {
	Input       string // as given
	ASCII       string // lowercase A-label form, without wildcard and trailing dot
	Unicode     string // U-label form when a label is internationalized, else empty
	Registrable string // registrable domain by the public suffix list (ASCII)
	Suffix      string // public suffix (ICANN or private section)
	Platform    string // free-hosting platform the scored label sits on, if any

	// Labels are the ASCII labels; Text the same labels as the scorer reads them (IDN labels
	// reduced to their confusable skeleton); Main the index of the label scored as the
	// registrable name (-1 when the name is only a suffix); IDN marks decoded labels.
	Labels []string
	Text   []string
	IDN    []bool
	// Foreign marks, for an IDN label, which bytes of its Text came from non-ASCII characters
	// ('1'; '0' for the ASCII letters kept as they were); empty for ASCII labels. A brand read
	// from letters that were ASCII all along is not a homoglyph, whatever else the label holds.
	Foreign []string
	Main    int
	// First is the index of the first label of the public suffix (or platform).
	First int
	// OwnedBy is the longest domain (or brand TLD) of the name that a brand owns.
	OwnedBy string
	owner   int
}

// NameError says why a name cannot be scored.
type NameError struct {
	Name   string
	Reason string
}

func (e *NameError) Error() string { return e.Reason }

// suffixInfo is what the rule set knows about a domain used as a suffix of names.
type suffixInfo struct {
	platform bool  // free-hosting platform
	owner    int16 // index of the brand that owns it, or -1
}

// Normalize parses one name with the hosting platforms and owned domains of rs. It never
// panics on hostile input: every problem is a *NameError.
func (rs *RuleSet) Normalize(input string) (Name, error) {
	var n Name
	err := normalizeInto(&n, input, rs, nil)
	if err != nil {
		return Name{Input: input}, err
	}
	n.Labels = append([]string(nil), n.Labels...)
	n.Text = append([]string(nil), n.Text...)
	n.IDN = append([]bool(nil), n.IDN...)
	n.Foreign = append([]string(nil), n.Foreign...)
	return n, nil
}

// normalizeInto fills n, reusing its slices; on the hot path (a lowercase ASCII name) it does
// not allocate.
func normalizeInto(n *Name, input string, rs *RuleSet, psl pslCache) error {
	suffixes := rs.suffixes
	n.Input = input
	n.Unicode, n.Registrable, n.Suffix, n.Platform, n.OwnedBy = "", "", "", "", ""
	n.Labels, n.Text, n.IDN, n.Foreign = n.Labels[:0], n.Text[:0], n.IDN[:0], n.Foreign[:0]
	n.Main, n.First, n.owner = -1, 0, -1

	s := strings.TrimSpace(input)
	s = strings.TrimSuffix(s, ".")
	s = strings.TrimPrefix(s, "*.")
	if s == "" {
		return &NameError{input, "empty name"}
	}
	if len(s) > 4*maxNameLen {
		return &NameError{input, fmt.Sprintf("name is %d bytes long, the limit is %d", len(s), maxNameLen)}
	}
	s, err := asciiLower(s)
	if err != nil {
		return &NameError{input, err.Error()}
	}
	if len(s) > maxNameLen {
		return &NameError{input, fmt.Sprintf("name is %d characters long, the limit is %d", len(s), maxNameLen)}
	}
	n.ASCII = s

	hasIDN := false
	for rest := s; ; {
		i := strings.IndexByte(rest, '.')
		label := rest
		if i >= 0 {
			label = rest[:i]
		}
		switch {
		case label == "":
			return &NameError{input, "empty label (two dots in a row, or a leading dot)"}
		case len(label) > maxLabelLen:
			return &NameError{input, fmt.Sprintf("label %.20q... is %d characters long, the limit is %d", label, len(label), maxLabelLen)}
		case len(n.Labels) >= maxLabels:
			return &NameError{input, "too many labels"}
		}
		text, foreign, idn := label, "", false
		if strings.HasPrefix(label, "xn--") {
			u, err := idna.Punycode.ToUnicode(label)
			if err != nil || u == label || u == "" {
				return &NameError{input, fmt.Sprintf("bad punycode in label %q", label)}
			}
			text, foreign = skeleton(u)
			idn, hasIDN = true, true
		}
		n.Labels = append(n.Labels, label)
		n.Text = append(n.Text, text)
		n.IDN = append(n.IDN, idn)
		n.Foreign = append(n.Foreign, foreign)
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	if hasIDN {
		parts := make([]string, len(n.Labels))
		for i, l := range n.Labels {
			parts[i] = l
			if n.IDN[i] {
				parts[i], _ = idna.Punycode.ToUnicode(l)
			}
		}
		n.Unicode = strings.Join(parts, ".")
	}

	// One PublicSuffix call, not EffectiveTLDPlusOne as well: each call costs an allocation
	// (its IP-address check builds an error), and the registrable name follows from the suffix.
	suffix := publicSuffix(s, psl)
	n.Suffix = suffix
	n.First = len(n.Labels) - (strings.Count(suffix, ".") + 1)
	// One walk over the name and its parents finds the longest owned domain and the longest
	// hosting platform; a platform longer than the public suffix moves the scored label left
	// of it.
	off, pslFirst := 0, n.First
	// Only the brand TLD can match when the name's last two labels end no key.
	from := 0
	if len(n.Labels) >= 2 && !rs.suffixTails[lastLabels(s, 2)] {
		from = len(n.Labels) - 1
		off = len(s) - len(n.Labels[from])
	}
	for i := from; i < len(n.Labels); i++ {
		if info, ok := suffixes[s[off:]]; ok {
			if info.owner >= 0 && n.owner < 0 {
				n.owner, n.OwnedBy = int(info.owner), s[off:]
			}
			if info.platform && n.Platform == "" && i > 0 && i <= pslFirst {
				n.Platform, n.First = s[off:], i
			}
		}
		off += len(n.Labels[i]) + 1
	}
	if n.First > 0 {
		n.Main = n.First - 1
		start := 0
		for i := 0; i < n.Main; i++ {
			start += len(n.Labels[i]) + 1
		}
		n.Registrable = s[start:]
	}
	return nil
}

// pslCache remembers, per scorer, the public suffix of names by their last two labels, where
// that is safe: when the suffix is only the last label, the second-to-last label is not in the
// list under it, and the list's walk stops there whatever comes before. Names of one
// certificate (www, mail, the bare domain) share their last two labels, and so do the many
// names of a hosting platform or a busy domain.
type pslCache map[string]string

const maxPSLCache = 8192

func publicSuffix(s string, cache pslCache) string {
	if cache == nil {
		suffix, _ := publicsuffix.PublicSuffix(s)
		return suffix
	}
	tail := lastLabels(s, 2)
	if suffix, ok := cache[tail]; ok {
		return s[len(s)-len(suffix):]
	}
	suffix, _ := publicsuffix.PublicSuffix(s)
	// A one-label suffix under two or more labels: the second-to-last label is no rule (or an
	// exception, which gives the same answer for the tail alone).
	if len(suffix) < len(tail) && strings.IndexByte(suffix, '.') < 0 {
		if len(cache) >= maxPSLCache {
			clear(cache)
		}
		cache[strings.Clone(tail)] = strings.Clone(suffix)
	}
	return suffix
}

// asciiLower lowercases s and checks its characters. Non-ASCII input (a name typed in Unicode)
// is converted to A-labels. It returns s itself when nothing changes, so the common case does
// not allocate.
func asciiLower(s string) (string, error) {
	clean := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		case c >= 'A' && c <= 'Z', c >= utf8.RuneSelf:
			clean = false
		default:
			return "", fmt.Errorf("bad character %q at position %d", c, i+1)
		}
	}
	if clean {
		return s, nil
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("name is not valid UTF-8")
	}
	lower := strings.ToLower(s)
	for _, r := range lower {
		if r < utf8.RuneSelf {
			continue
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r) {
			return "", fmt.Errorf("bad character %q", r)
		}
	}
	labels := strings.Split(lower, ".")
	for i, l := range labels {
		if isASCII(l) {
			continue
		}
		a, err := idna.Punycode.ToASCII(l)
		if err != nil {
			return "", fmt.Errorf("cannot encode label %q as punycode: %v", l, err)
		}
		labels[i] = a
	}
	return strings.Join(labels, "."), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// skeleton reduces a decoded IDN label to the ASCII a reader would see: each non-ASCII
// character becomes its UTS #39 confusable skeleton, lowercased, with accents removed;
// characters with no Latin look-alike become '~', which the segmenter treats as an
// unplaceable letter. ASCII letters stay as they are: the skeleton would turn an honest "m"
// into "rn" and hide the words around it. foreign marks the bytes that came from non-ASCII
// characters ('1') and those that did not ('0').
func skeleton(u string) (text, foreign string) {
	var b, f strings.Builder
	for _, r := range strings.ToLower(u) {
		if r < utf8.RuneSelf {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
				b.WriteRune(r)
			} else {
				b.WriteByte('~')
			}
			f.WriteByte('0')
			continue
		}
		sk := strings.ToLower(confusables.Skeleton(string(r)))
		for _, c := range norm.NFD.String(sk) {
			switch {
			case unicode.Is(unicode.Mn, c):
				continue
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
				b.WriteRune(c)
			default:
				b.WriteByte('~')
			}
			f.WriteByte('1')
		}
	}
	return b.String(), f.String()
}
