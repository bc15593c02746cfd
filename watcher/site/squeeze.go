package site

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// Cut says how a page was read: the padding taken out of it and whether it was still cut at
// the size limit.
type Cut struct {
	// Padding is how many bytes of long HTML comments and long runs of blank space were
	// skipped: kits hide their page behind megabytes of them, past a reader's size limit.
	Padding int64
	// Truncated: the page was longer than the limit even without its padding.
	Truncated bool
}

// padRun is the length past which an HTML comment or a run of blank space is padding: an
// ordinary page's comments and indentation are far shorter, and are kept as they are.
const padRun = 256

// maxSqueezedInput bounds what is read to find limit bytes of page: padding costs a byte loop,
// not memory, but not without end (a gzip of blanks decompresses a thousandfold).
func maxSqueezedInput(limit int64) int64 { return 32 * limit }

// readSqueezed reads up to limit bytes of page from r, skipping HTML comments and blank runs
// longer than padRun (a blank run becomes one newline), so that padding does not use up the
// limit. Short comments and blanks are kept byte for byte.
func readSqueezed(r io.Reader, limit int64) ([]byte, Cut, error) {
	var cut Cut
	raw := &io.LimitedReader{R: r, N: maxSqueezedInput(limit)}
	in := bufio.NewReaderSize(raw, 64<<10)
	out := bytes.NewBuffer(make([]byte, 0, min(limit, 256<<10)))
	var pending []byte // a comment or blank run not yet known to be short or long
	full := func() bool { return int64(out.Len()) >= limit }
	write := func(p []byte) {
		room := limit - int64(out.Len())
		if int64(len(p)) > room {
			p = p[:room]
			cut.Truncated = true
		}
		out.Write(p)
	}
	var err error
	for !full() {
		var b byte
		if b, err = in.ReadByte(); err != nil {
			break
		}
		switch {
		case isBlank(b):
			pending = append(pending[:0], b)
			n := int64(1)
			for {
				c, e := in.ReadByte()
				if e != nil {
					err = e
					break
				}
				if !isBlank(c) {
					in.UnreadByte()
					break
				}
				if n < padRun {
					pending = append(pending, c)
				}
				n++
			}
			if n > padRun {
				cut.Padding += n - 1
				write([]byte{'\n'})
			} else {
				write(pending)
			}
		case b == '<':
			if peek, _ := in.Peek(3); string(peek) != "!--" {
				write([]byte{b})
				continue
			}
			in.Discard(3)
			pending = append(pending[:0], "<!--"...)
			n, closed := int64(4), false
			window := [3]byte{}
			for {
				c, e := in.ReadByte()
				if e != nil {
					err = e
					break
				}
				n++
				if n <= padRun {
					pending = append(pending, c)
				}
				window[0], window[1], window[2] = window[1], window[2], c
				if window == [3]byte{'-', '-', '>'} {
					closed = true
					break
				}
			}
			switch {
			case n > padRun:
				cut.Padding += n
			case closed:
				write(pending)
			default:
				write(pending) // a short comment the page ended in
			}
		default:
			write([]byte{b})
		}
		if err != nil {
			break
		}
	}
	if err == io.EOF {
		err = nil
		if raw.N <= 0 {
			cut.Truncated = true // the input bound, not the page, ended it
		}
	}
	if full() && err == nil {
		// More after the limit? Then the page was cut.
		if _, e := in.Peek(1); e == nil {
			cut.Truncated = true
		}
	}
	if err != nil {
		return out.Bytes(), cut, fmt.Errorf("reading the page: %w", err)
	}
	return out.Bytes(), cut, nil
}

func isBlank(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' }
