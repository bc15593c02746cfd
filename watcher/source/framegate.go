package source

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
)

// errFrameRejected ends a connection whose server sent a frame the client library cannot
// survive.
var errFrameRejected = errors.New("certstream frame rejected")

// frameGateConn sits under certstream-go's websocket connection and reads the server's frames
// as they pass. certstream-go reads frames of any size into memory and hands every JSON value to
// jsonq.NewQuery, which panics (taking the whole process down) when the value is not an object.
// The gate ends the connection instead, before such a frame reaches the library: the library
// then reconnects, and the frames that arrived before are delivered untouched.
//
// Only server-to-client frames are inspected (unmasked, per RFC 6455); the default dialer does
// not negotiate compression, so payloads are plain text.
type frameGateConn struct {
	net.Conn
	maxFrame uint64
	onReject func(reason string, oversized bool)

	hdr       [14]byte
	hdrLen    int // bytes of the current header seen so far
	remaining uint64
	msgBytes  uint64 // payload of the current message so far, across continuation frames
	// firstText: inside the payload of the first frame of a text message and no JSON byte yet.
	firstText bool
	sticky    error
	// headerMatched counts the bytes of "\r\n\r\n" matched so far at the end of the HTTP
	// response; 4 means the response is over.
	headerMatched int
}

func (c *frameGateConn) Read(p []byte) (int, error) {
	if c.sticky != nil {
		return 0, c.sticky
	}
	n, err := c.Conn.Read(p)
	if cut, reason, oversized := c.inspect(p[:n]); cut >= 0 {
		c.sticky = fmt.Errorf("%w: %s", errFrameRejected, reason)
		if c.onReject != nil {
			c.onReject(reason, oversized)
		}
		c.Conn.Close()
		if cut == 0 {
			return 0, c.sticky
		}
		return cut, nil
	}
	return n, err
}

// inspect advances the frame parser over b. It returns -1 when all is well, or the offset of
// the first byte to withhold: where the offending frame's header began in b (0 if earlier).
func (c *frameGateConn) inspect(b []byte) (cut int, reason string, oversized bool) {
	frameStart := 0
	i := 0
	// The connection starts with the server's HTTP upgrade response; frames follow its blank line.
	for c.headerMatched < 4 && i < len(b) {
		if b[i] == "\r\n\r\n"[c.headerMatched] {
			c.headerMatched++
		} else if b[i] == '\r' {
			c.headerMatched = 1
		} else {
			c.headerMatched = 0
		}
		i++
	}
	for i < len(b) {
		if c.remaining > 0 {
			if c.firstText {
				for i < len(b) && c.remaining > 0 {
					ch := b[i]
					i++
					c.remaining--
					switch ch {
					case ' ', '\t', '\r', '\n':
						continue
					case '{':
						c.firstText = false
					default:
						return frameStart, fmt.Sprintf("message starts with %q, not a JSON object", ch), false
					}
					break
				}
				if c.remaining == 0 && c.firstText {
					return frameStart, "text frame without a JSON object", false
				}
				continue
			}
			skip := min(c.remaining, uint64(len(b)-i))
			c.remaining -= skip
			i += int(skip)
			continue
		}
		if c.hdrLen == 0 {
			frameStart = i
		}
		c.hdr[c.hdrLen] = b[i]
		c.hdrLen++
		i++
		if c.hdrLen < 2 {
			continue
		}
		need := 2
		switch c.hdr[1] & 0x7f {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		if c.hdr[1]&0x80 != 0 {
			need += 4 // masked (servers must not mask, but be exact about lengths anyway)
		}
		if c.hdrLen < need {
			continue
		}
		var length uint64
		switch c.hdr[1] & 0x7f {
		case 126:
			length = uint64(binary.BigEndian.Uint16(c.hdr[2:4]))
		case 127:
			length = binary.BigEndian.Uint64(c.hdr[2:10])
		default:
			length = uint64(c.hdr[1] & 0x7f)
		}
		opcode := c.hdr[0] & 0x0f
		c.hdrLen = 0
		switch opcode {
		case 0: // continuation: the message grows
			c.msgBytes += length
		case 1, 2:
			c.msgBytes = length
		}
		if length > c.maxFrame || c.msgBytes > c.maxFrame {
			return frameStart, fmt.Sprintf("message over the %d-byte limit", c.maxFrame), true
		}
		c.remaining = length
		c.firstText = opcode == 1 // a new text message; continuations (0) carry no first byte
		if opcode == 1 && length == 0 {
			return frameStart, "empty text frame", false
		}
	}
	return -1, "", false
}
