package source

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a small pull reader over one JSON document. Certstream frames are mostly fields we
// never look at (extensions, the chain, the DER bytes), so skipping them without building values
// is what lets a replay decode hundreds of thousands of messages a second; encoding/json would
// build every map first. It is also strict where it matters for hostile input: nesting depth and
// string escapes are checked, and every error says at which byte it stopped.
type scanner struct {
	buf []byte
	pos int
}

const maxDepth = 64

var errDepth = errors.New("JSON nested too deeply")

func (s *scanner) fail(what string) error {
	if s.pos >= len(s.buf) {
		return fmt.Errorf("unexpected end of JSON, wanted %s", what)
	}
	return fmt.Errorf("invalid JSON at byte %d: wanted %s, found %q", s.pos, what, s.buf[s.pos])
}

func (s *scanner) ws() {
	for s.pos < len(s.buf) {
		switch s.buf[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.pos >= len(s.buf) {
		return 0
	}
	return s.buf[s.pos]
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.fail(strconv.QuoteRune(rune(c)))
	}
	s.pos++
	return nil
}

// object iterates the members of the object at the cursor, calling member with each raw key
// (escapes left in; our keys have none). member must consume the value.
func (s *scanner) object(member func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.pos++
		return nil
	}
	for {
		key, err := s.rawString()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.fail("',' or '}'")
		}
	}
}

// array iterates the elements of the array at the cursor; elem must consume each value.
func (s *scanner) array(elem func() error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.pos++
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			return nil
		default:
			return s.fail("',' or ']'")
		}
	}
}

// rawString consumes a string and returns its bytes between the quotes, escapes undecoded.
func (s *scanner) rawString() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start := s.pos
	for s.pos < len(s.buf) {
		c := s.buf[s.pos]
		switch {
		case c == '"':
			raw := s.buf[start:s.pos]
			s.pos++
			return raw, nil
		case c == '\\':
			if err := s.escape(); err != nil {
				return nil, err
			}
		case c < 0x20:
			return nil, s.fail("no control characters in a string")
		default:
			s.pos++
		}
	}
	s.pos = len(s.buf)
	return nil, s.fail("end of string")
}

// str consumes a string and returns it decoded. null gives "".
func (s *scanner) str() (string, error) {
	if s.peek() == 'n' {
		return "", s.literal("null")
	}
	raw, err := s.rawString()
	if err != nil {
		return "", err
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw), nil
	}
	return unescape(raw)
}

func unescape(raw []byte) (string, error) {
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(raw) {
			return "", errors.New("invalid JSON string escape at end of string")
		}
		switch raw[i] {
		case '"', '\\', '/':
			out = append(out, raw[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n, err := hexRune(raw[i+1:])
			if err != nil {
				return "", err
			}
			i += n
			if utf16.IsSurrogate(r) {
				r2, n2, err := hexRune(raw[i+1:])
				if err == nil && i+1 < len(raw) {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += n2
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", fmt.Errorf("invalid JSON string escape \\%c", raw[i])
		}
	}
	return string(out), nil
}

// hexRune reads "XXXX" (after a \u) or "\uXXXX" when the input starts with a backslash; it
// returns the rune and how many bytes it used.
func hexRune(b []byte) (rune, int, error) {
	skip := 0
	if len(b) >= 2 && b[0] == '\\' && b[1] == 'u' {
		skip = 2
	}
	if len(b) < skip+4 {
		return 0, 0, errors.New("invalid JSON \\u escape")
	}
	v, err := strconv.ParseUint(string(b[skip:skip+4]), 16, 32)
	if err != nil {
		return 0, 0, errors.New("invalid JSON \\u escape")
	}
	return rune(v), skip + 4, nil
}

// number consumes a number (integer or float, as the server variants disagree) or null (0).
func (s *scanner) number() (float64, error) {
	if s.peek() == 'n' {
		return 0, s.literal("null")
	}
	start := s.pos
	if err := s.numberGrammar(); err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(string(s.buf[start:s.pos]), 64)
	if err != nil {
		return 0, fmt.Errorf("invalid JSON number %q", s.buf[start:s.pos])
	}
	return v, nil
}

// integer consumes a number that should be a whole one (an index); exact up to int64.
func (s *scanner) integer() (int64, error) {
	s.ws()
	start := s.pos
	f, err := s.number()
	if err != nil {
		return 0, err
	}
	if v, err := strconv.ParseInt(string(s.buf[start:s.pos]), 10, 64); err == nil {
		return v, nil
	}
	return int64(f), nil
}

func (s *scanner) literal(word string) error {
	s.ws()
	if !bytes.HasPrefix(s.buf[s.pos:], []byte(word)) {
		return s.fail(word)
	}
	s.pos += len(word)
	return nil
}

// skip consumes one value of any kind without building it. It keeps the open containers in a
// bit stack instead of recursing, so a hostile frame of a million '[' cannot exhaust the stack.
func (s *scanner) skip() error {
	var objects uint64 // bit d set: the container at depth d is an object
	depth := 0
	inObject := func() bool { return objects&(1<<(depth-1)) != 0 }
	for {
		// One value.
		switch c := s.peek(); c {
		case '{', '[':
			if depth == maxDepth {
				return errDepth
			}
			s.pos++
			depth++
			if c == '{' {
				objects |= 1 << (depth - 1)
			} else {
				objects &^= 1 << (depth - 1)
			}
			if n := s.peek(); (c == '{' && n == '}') || (c == '[' && n == ']') {
				s.pos++
				depth--
				break
			}
			if c == '{' {
				if err := s.memberKey(); err != nil {
					return err
				}
			}
			continue
		case '"':
			if _, err := s.rawString(); err != nil {
				return err
			}
		case 't':
			if err := s.literal("true"); err != nil {
				return err
			}
		case 'f':
			if err := s.literal("false"); err != nil {
				return err
			}
		case 'n':
			if err := s.literal("null"); err != nil {
				return err
			}
		default:
			if err := s.numberGrammar(); err != nil {
				return err
			}
		}
		// After a complete value: close every container that ends here, then either finish or
		// move to the next element.
		for {
			if depth == 0 {
				return nil
			}
			closer := byte(']')
			if inObject() {
				closer = '}'
			}
			switch s.peek() {
			case ',':
				s.pos++
				if inObject() {
					if err := s.memberKey(); err != nil {
						return err
					}
				}
			case closer:
				s.pos++
				depth--
				continue
			default:
				return s.fail("',' or " + strconv.QuoteRune(rune(closer)))
			}
			break
		}
	}
}

func (s *scanner) memberKey() error {
	if _, err := s.rawString(); err != nil {
		return err
	}
	return s.expect(':')
}

// numberGrammar consumes -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? exactly.
func (s *scanner) numberGrammar() error {
	s.ws()
	b, i := s.buf, s.pos
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return s.fail("number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			s.pos = i
			return s.fail("digits after '.'")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			s.pos = i
			return s.fail("exponent digits")
		}
	}
	s.pos = i
	return nil
}

// escape checks the escape sequence at the cursor (a backslash) and moves past it.
func (s *scanner) escape() error {
	if s.pos+1 >= len(s.buf) {
		s.pos = len(s.buf)
		return s.fail("escape")
	}
	switch s.buf[s.pos+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos += 2
		return nil
	case 'u':
		if s.pos+6 > len(s.buf) {
			s.pos = len(s.buf)
			return s.fail("four hex digits")
		}
		for _, h := range s.buf[s.pos+2 : s.pos+6] {
			if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
				s.pos += 2
				return s.fail("four hex digits")
			}
		}
		s.pos += 6
		return nil
	}
	s.pos++
	return s.fail("a valid escape")
}
