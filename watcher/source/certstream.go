package source

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

// MessageKind says what a certstream frame was.
type MessageKind int

const (
	KindCertificate MessageKind = iota // certificate_update: names plus certificate details
	KindNames                          // dns_entries (domains-only endpoints): names only
	KindHeartbeat
	KindOther // a well-formed message of a type we do not use
)

// Limits on what one message may carry. Real certificates list at most a few hundred names; a
// frame claiming more is hostile or broken, and the extra names are not worth the memory.
const (
	MaxNamesPerMessage = 1000
	maxNameBytes       = 255 + 2 // a DNS name plus a "*." wildcard
)

// ErrNoMessageType is returned for JSON objects that are not certstream messages at all.
var ErrNoMessageType = errors.New("no message_type: not a certstream message")

// DecodeMessage reads one certstream frame into ev, tolerating the known server variants: the
// Python server and certstream-server-go's lite and full streams (integer or float times,
// emailAddress or email_address, empty cert_link), and dns_entries messages whose data is a
// plain list of names or an object with them. ev is reset first; its Names slice is reused.
func DecodeMessage(frame []byte, ev *watcher.Event) (MessageKind, error) {
	names := ev.Names[:0]
	*ev = watcher.Event{Names: names}
	ev.Cert.Index = -1
	s := scanner{buf: frame}
	var msgType []byte
	sawData := false
	err := s.object(func(key []byte) error {
		switch string(key) {
		case "message_type":
			raw, err := s.rawString()
			msgType = raw
			return err
		case "data":
			sawData = true
			switch s.peek() {
			case '[':
				return s.nameList(ev)
			case '{':
				return s.data(ev)
			}
			return s.skip()
		}
		return s.skip()
	})
	if s.ws(); err == nil && s.pos != len(s.buf) {
		err = s.fail("end of message")
	}
	if err != nil {
		return KindOther, err
	}
	ev.Sanitize()
	switch string(msgType) {
	case "certificate_update":
		if !sawData {
			return KindOther, errors.New("certificate_update without data")
		}
		return KindCertificate, nil
	case "dns_entries":
		return KindNames, nil
	case "heartbeat":
		return KindHeartbeat, nil
	case "":
		if msgType == nil {
			return KindOther, ErrNoMessageType
		}
	}
	return KindOther, nil
}

// nameList reads an array of names into ev (strings only; anything else is an error).
func (s *scanner) nameList(ev *watcher.Event) error {
	return s.array(func() error {
		name, err := s.str()
		if err != nil {
			return err
		}
		if name != "" && len(name) <= maxNameBytes && len(ev.Names) < MaxNamesPerMessage {
			ev.Names = append(ev.Names, name)
		}
		return nil
	})
}

func (s *scanner) data(ev *watcher.Event) error {
	return s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "cert_index":
			ev.Cert.Index, err = s.integer()
		case "cert_link":
			ev.Cert.Link, err = s.str()
		case "seen":
			ev.Seen, err = s.timestamp()
		case "source":
			err = s.object(func(k []byte) error {
				var err error
				switch string(k) {
				case "name":
					ev.Cert.LogName, err = s.str()
				case "url":
					ev.Cert.LogURL, err = s.str()
				default:
					err = s.skip()
				}
				return err
			})
		case "leaf_cert":
			err = s.leaf(ev)
		case "domains", "all_domains": // names-only objects of some servers
			err = s.nameList(ev)
		default:
			err = s.skip()
		}
		return err
	})
}

func (s *scanner) leaf(ev *watcher.Event) error {
	var subjectCN string
	err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "all_domains":
			err = s.nameList(ev)
		case "fingerprint":
			ev.Cert.Fingerprint, err = s.str()
		case "not_before":
			ev.Cert.NotBefore, err = s.timestamp()
		case "not_after":
			ev.Cert.NotAfter, err = s.timestamp()
		case "issuer":
			ev.Cert.Issuer, err = s.issuer()
		case "subject":
			err = s.object(func(k []byte) error {
				if string(k) == "CN" {
					var err error
					subjectCN, err = s.str()
					return err
				}
				return s.skip()
			})
		default:
			err = s.skip()
		}
		return err
	})
	if err == nil && len(ev.Names) == 0 && subjectCN != "" && len(subjectCN) <= maxNameBytes {
		ev.Names = append(ev.Names, subjectCN)
	}
	return err
}

// issuer prefers the organization and common name ("Let's Encrypt R3") over the aggregated DN,
// which is longer and formatted differently by each server.
func (s *scanner) issuer() (string, error) {
	if s.peek() == 'n' {
		return "", s.literal("null")
	}
	var org, cn, agg string
	err := s.object(func(k []byte) error {
		var err error
		switch string(k) {
		case "O":
			org, err = s.str()
		case "CN":
			cn, err = s.str()
		case "aggregated":
			agg, err = s.str()
		default:
			err = s.skip()
		}
		return err
	})
	switch {
	case org != "" && cn != "":
		return org + " " + cn, err
	case cn != "":
		return cn, err
	case org != "":
		return org, err
	}
	return agg, err
}

// timestamp reads Unix seconds, integer or fractional; out-of-range values give the zero time
// rather than a year 300000 date in a report.
func (s *scanner) timestamp() (time.Time, error) {
	v, err := s.number()
	return unixSeconds(v), err
}

// unixSeconds converts fractional Unix seconds; zero, negative or absurd values give the zero
// time.
func unixSeconds(v float64) time.Time {
	if !(v > 0 && v < 1e11) {
		return time.Time{}
	}
	sec, frac := math.Modf(v)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC()
}

// DescribeDecodeError names the problem in a frame for logs without echoing the whole frame.
func DescribeDecodeError(err error, frame []byte) string {
	head := frame
	if len(head) > 80 {
		head = head[:80]
	}
	return fmt.Sprintf("%v (frame of %d bytes starting %q)", err, len(frame), head)
}

// countSkipped counts a heartbeat or an unused message type and reports whether the message
// carries no names (and is therefore done with).
func countSkipped(kind MessageKind, stats *watcher.Stats) bool {
	switch kind {
	case KindHeartbeat:
		stats.Heartbeats.Add(1)
		return true
	case KindOther:
		stats.Other.Add(1)
		return true
	}
	return false
}

// trackGap counts the entries of ev's log the stream skipped (certstream has no replay: a
// server restart or overload loses certificates silently) and says so, rate-limited.
func trackGap(ev *watcher.Event, stats *watcher.Stats, limiter *logLimiter, log *slog.Logger, url string) {
	logName := ev.Cert.LogURL
	if logName == "" {
		logName = ev.Cert.LogName
	}
	if missed := stats.Gaps.Observe(logName, ev.Cert.Index); missed > 0 {
		limiter.Warn(log, "gap", "the certstream server skipped entries of a log (they were never sent)",
			"url", url, "log", watcher.Clean(logName, 200), "missed", missed, "at_index", ev.Cert.Index,
			"missed_total", stats.Gaps.Total())
	}
}
