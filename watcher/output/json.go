// Package output writes scored names for people and programs: JSON lines, CSV and an aligned
// table. Writers are streaming (one record at a time, input order) and allocate little, because
// `helpwatch score` pushes whole newly-registered-domain feeds through them.
package output

import (
	"strconv"
	"unicode/utf8"

	"github.com/helpwatch/helpwatch/rules"
)

// AppendJSON appends r as one JSON object (no newline). Hand-written rather than encoding/json:
// the score command's throughput target leaves no room for reflection per record.
func AppendJSON(b []byte, r *rules.Result) []byte {
	b = append(b, `{"domain":`...)
	b = AppendJSONString(b, r.Domain)
	if r.Unicode != "" {
		b = append(b, `,"unicode":`...)
		b = AppendJSONString(b, r.Unicode)
	}
	b = append(b, `,"registrable":`...)
	b = AppendJSONString(b, r.Registrable)
	b = append(b, `,"score":`...)
	b = strconv.AppendInt(b, int64(r.Score), 10)
	b = append(b, `,"verdict":`...)
	b = AppendJSONString(b, string(r.Verdict))
	b = append(b, `,"brand":`...)
	b = AppendJSONString(b, r.Brand)
	b = append(b, `,"reasons":[`...)
	for i, re := range r.Reasons {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"rule":`...)
		b = AppendJSONString(b, re.Rule)
		b = append(b, `,"points":`...)
		b = strconv.AppendInt(b, int64(re.Points), 10)
		b = append(b, `,"detail":`...)
		b = AppendJSONString(b, re.Detail)
		b = append(b, '}')
	}
	b = append(b, ']')
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = AppendJSONString(b, r.Error)
	}
	b = append(b, `,"rules_version":`...)
	b = AppendJSONString(b, r.RulesVersion)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD and the characters
// HTML or terminals treat specially (<, >, &, U+2028, U+2029) are escaped, so the output is safe
// to embed and to print.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c != 0x7f {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
