package testkit

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// SMTPServer is a minimal SMTP server on 127.0.0.1 that keeps what it receives (the abuse
// reports' and the notification digests' tests).
type SMTPServer struct {
	Addr   string
	mu     sync.Mutex
	got    []Mail
	reject map[string]string // recipient -> reply to RCPT
	// cutInData closes the connection in the middle of the message (after 354): it never
	// reaches the server whole.
	cutInData bool
	// queued runs after the server has accepted a message and answered 250 (then the
	// connection is cut, as a server restarting at that moment would).
	queued func()
}

// Mail is one message an SMTP server accepted.
type Mail struct {
	From, To string
	Data     []byte
}

// StartSMTP starts one, stopped when the test ends.
func StartSMTP(t testing.TB) *SMTPServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &SMTPServer{Addr: ln.Addr().String(), reject: map[string]string{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *SMTPServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	say := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	say("220 mx.test ESMTP")
	var cur Mail
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			say("250-mx.test")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "HELO"), strings.HasPrefix(cmd, "NOOP"), strings.HasPrefix(cmd, "RSET"):
			say("250 ok")
		case strings.HasPrefix(cmd, "MAIL FROM:"):
			cur = Mail{From: between(line, "<", ">")}
			say("250 ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			to := between(line, "<", ">")
			s.mu.Lock()
			reply, bad := s.reject[to]
			s.mu.Unlock()
			if bad {
				say(reply)
				continue
			}
			cur.To = to
			say("250 ok")
		case cmd == "DATA":
			say("354 end with .")
			s.mu.Lock()
			cut, queued := s.cutInData, s.queued
			s.mu.Unlock()
			if cut {
				r.ReadString('\n')
				return
			}
			var data []byte
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				l = strings.TrimPrefix(l, ".")
				data = append(data, l...)
			}
			cur.Data = data
			s.mu.Lock()
			s.got = append(s.got, cur)
			s.mu.Unlock()
			say("250 queued")
			if queued != nil {
				queued()
				return
			}
		case cmd == "QUIT":
			say("221 bye")
			return
		default:
			say("502 unknown")
		}
	}
}

func between(s, open, close string) string {
	i := strings.Index(s, open)
	j := strings.LastIndex(s, close)
	if i < 0 || j < i {
		return ""
	}
	return s[i+1 : j]
}

// Received is what the server accepted so far.
func (s *SMTPServer) Received() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.got...)
}
