// Package output writes scored names for people and programs: JSON lines, CSV and an aligned
// table. Writers are streaming (one record at a time, input order) and allocate little, because
// `helpwatch score` pushes whole newly-registered-domain feeds through them.
package output

import (
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
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
// HTML or terminals treat specially (<, >, &, C1 controls, U+2028, U+2029, bidirectional
// controls) are escaped, so the output is safe to embed and to print.
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
		if r == utf8.RuneError && size == 1 || watcher.Unsafe(r) {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = appendUnicodeEscape(b, r)
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

func appendUnicodeEscape(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// SafeJSON wraps a writer that receives encoding/json output (an Encoder writes each value in
// one Write) and escapes the runes encoding/json lets through raw but a terminal or a page must
// not see as is: C1 controls and bidirectional controls. They can only occur inside JSON
// strings, where a \uXXXX escape means the same character.
func SafeJSON(w io.Writer) io.Writer { return &safeJSON{w: w} }

type safeJSON struct {
	w   io.Writer
	buf []byte
}

func (s *safeJSON) Write(p []byte) (int, error) {
	clean := true
	for i := 0; i < len(p); {
		if p[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if watcher.Unsafe(r) && r != utf8.RuneError {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return s.w.Write(p)
	}
	s.buf = s.buf[:0]
	for i := 0; i < len(p); {
		if p[i] < utf8.RuneSelf {
			s.buf = append(s.buf, p[i])
			i++
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if watcher.Unsafe(r) && r != utf8.RuneError {
			s.buf = appendUnicodeEscape(s.buf, r)
		} else {
			s.buf = append(s.buf, p[i:i+size]...)
		}
		i += size
	}
	if _, err := s.w.Write(s.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}
