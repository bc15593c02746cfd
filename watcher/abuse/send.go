package abuse

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher/store"
)

// SendStore is what Send reads and records; the SQLite store implements it.
type SendStore interface {
	AbuseReportByMessageID(ctx context.Context, messageID string) (*store.AbuseReport, bool, error)
	MarkAbuseReportSent(ctx context.Context, messageID string, at time.Time, reply string) error
}

// SMTP says how to reach the mail server.
type SMTP struct {
	Addr     string // host:port
	StartTLS bool
	User     string
	Password string
	Timeout  time.Duration // per message (default 30 s)
	// TLS overrides the TLS settings (tests); the server name defaults to Addr's host.
	TLS *tls.Config
	// Hello is the name given in EHLO (default "localhost").
	Hello string
}

// Outcome of one outbox message.
type Outcome struct {
	File      string
	MessageID string
	To        string
	Subject   string
	Status    string // "sent", "would send", "already sent", "skipped: ..."
}

// Send sends every message of the outbox that the store prepared and has not recorded as sent,
// oldest file first, and moves each sent file to outbox/sent. A message the store already
// recorded as sent is moved without sending: nothing goes out twice. Once the server has
// accepted a message it is recorded as sent even if the run is being stopped (Ctrl-C) at that
// moment, so a stop never causes a second copy. A message the server refuses (a 550 for one
// registrar's address) is reported and stays in the outbox while the others go on; when the
// server cannot be reached or refuses the session (connect, STARTTLS, AUTH), Send stops, as
// every other message would fail the same way. The error lists every failure. With dryRun
// nothing is sent or recorded.
func Send(ctx context.Context, st SendStore, outbox string, cfg SMTP, dryRun bool) ([]Outcome, error) {
	files, err := filepath.Glob(filepath.Join(outbox, "*.eml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	sentDir := filepath.Join(outbox, "sent")
	var outcomes []Outcome
	var failures []string
	failed := func() error {
		if len(failures) == 0 {
			return nil
		}
		return fmt.Errorf("%d message(s) not sent (they stay in %s):\n  %s", len(failures), outbox, strings.Join(failures, "\n  "))
	}
	for _, file := range files {
		if ctx.Err() != nil {
			return outcomes, errors.Join(ctx.Err(), failed())
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return outcomes, err
		}
		o := Outcome{File: file}
		msg, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			o.Status = "skipped: not a readable message: " + err.Error()
			outcomes = append(outcomes, o)
			continue
		}
		o.MessageID, o.Subject = msg.Header.Get("Message-Id"), msg.Header.Get("Subject")
		from, errFrom := mail.ParseAddress(msg.Header.Get("From"))
		to, errTo := mail.ParseAddress(msg.Header.Get("To"))
		if errFrom != nil || errTo != nil {
			o.Status = "skipped: From or To is not an address"
			outcomes = append(outcomes, o)
			continue
		}
		o.To = to.Address
		rec, ok, err := st.AbuseReportByMessageID(ctx, o.MessageID)
		if err != nil {
			return outcomes, err
		}
		switch {
		case !ok:
			o.Status = "skipped: " + ErrNotPrepared.Error()
		case rec.Recipient != to.Address:
			o.Status = fmt.Sprintf("skipped: addressed to %s, but prepared for %s", to.Address, rec.Recipient)
		case !rec.SentAt.IsZero():
			o.Status = "already sent " + rec.SentAt.Format(time.RFC3339)
			if !dryRun {
				if err := moveTo(sentDir, file); err != nil {
					return outcomes, err
				}
			}
		case dryRun:
			o.Status = "would send"
		default:
			reply, err := deliver(ctx, cfg, from.Address, to.Address, raw)
			if err != nil {
				o.Status = "failed: " + err.Error()
				outcomes = append(outcomes, o)
				failures = append(failures, fmt.Sprintf("%s to %s: %v", filepath.Base(file), to.Address, err))
				var session *sessionError
				if errors.As(err, &session) {
					return outcomes, fmt.Errorf("%s: %w; stopping: the remaining messages stay in %s", cfg.Addr, err, outbox)
				}
				continue
			}
			// Accepted: this must be recorded whatever happens to ctx now, or a stop right
			// after the server's 250 would send the message again next time.
			recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			err = st.MarkAbuseReportSent(recordCtx, o.MessageID, time.Now().UTC(), reply)
			cancel()
			if err != nil {
				return outcomes, fmt.Errorf("%s was sent but could not be recorded: %w (move it out of the outbox by hand so it is not sent again)", file, err)
			}
			if err := moveTo(sentDir, file); err != nil {
				return outcomes, fmt.Errorf("%s was sent and recorded but could not be moved to %s: %w (it will not be sent again)", file, sentDir, err)
			}
			o.Status = "sent"
		}
		outcomes = append(outcomes, o)
	}
	return outcomes, failed()
}

// sessionError is a failure before any message was offered (connect, greeting, STARTTLS,
// AUTH): every other message would meet it too.
type sessionError struct{ err error }

func (e *sessionError) Error() string { return e.err.Error() }
func (e *sessionError) Unwrap() error { return e.err }

func moveTo(dir, file string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Rename(file, filepath.Join(dir, filepath.Base(file)))
}

// deliver runs one SMTP transaction; it returns the server's reply to the message.
func deliver(ctx context.Context, cfg SMTP, from, to string, raw []byte) (string, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return "", fmt.Errorf("SMTP server %q: want host:port", cfg.Addr)
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return "", &sessionError{err}
	}
	// A stop does not cut a transaction in the middle: the deadline bounds it instead.
	conn.SetDeadline(time.Now().Add(timeout))
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return "", &sessionError{err}
	}
	defer c.Close()
	hello := cfg.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return "", &sessionError{err}
	}
	if cfg.StartTLS {
		tc := cfg.TLS
		if tc == nil {
			tc = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if err := c.StartTLS(tc); err != nil {
			return "", &sessionError{fmt.Errorf("STARTTLS: %w", err)}
		}
	}
	if cfg.User != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return "", &sessionError{errors.New("the server offers no AUTH")}
		}
		if err := c.Auth(smtp.PlainAuth("", cfg.User, cfg.Password, host)); err != nil {
			return "", &sessionError{fmt.Errorf("AUTH: %w", err)}
		}
	}
	if err := c.Mail(from); err != nil {
		return "", fmt.Errorf("MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return "", fmt.Errorf("RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return "", fmt.Errorf("DATA: %w", err)
	}
	if _, err := io.Copy(w, bytes.NewReader(raw)); err != nil {
		return "", err
	}
	if err := w.Close(); err != nil {
		// No reply to the final dot: the server may or may not have the message. It stays in
		// the outbox (a lost report is worse than a duplicate the desk can see is one).
		return "", fmt.Errorf("DATA: %w (the server gave no answer to the message; it stays queued)", err)
	}
	_ = c.Quit() // the message is accepted; a failed goodbye changes nothing
	return "250 accepted " + strings.TrimSpace(time.Now().UTC().Format(time.RFC3339)), nil
}
