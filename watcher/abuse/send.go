package abuse

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher/output"
)

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

// sessionError is a failure before any message was offered (connect, greeting, STARTTLS,
// AUTH): every other message would meet it too.
type sessionError struct{ err error }

func (e *sessionError) Error() string { return e.err.Error() }
func (e *sessionError) Unwrap() error { return e.err }

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
			return "", &sessionError{replyError("AUTH", err, cfg)}
		}
	}
	if err := c.Mail(from); err != nil {
		return "", replyError("MAIL FROM", err, cfg)
	}
	if err := c.Rcpt(to); err != nil {
		return "", replyError("RCPT TO", err, cfg)
	}
	w, err := c.Data()
	if err != nil {
		return "", replyError("DATA", err, cfg)
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

// SendMail runs one SMTP transaction for raw from one sender to one recipient and returns the
// server's reply: the transport of the abuse reports, shared with the notification digests.
func SendMail(ctx context.Context, cfg SMTP, from, to string, raw []byte) (string, error) {
	return deliver(ctx, cfg, from, to, raw)
}

// replyError says what an SMTP server answered at stage: its code and its text cleaned,
// bounded, and without the credentials (a server that echoes the AUTH line would otherwise
// print them).
func replyError(stage string, err error, cfg SMTP) error {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %w", stage, err)
	}
	msg := te.Msg
	if cfg.Password != "" {
		plain := base64.StdEncoding.EncodeToString([]byte("\x00" + cfg.User + "\x00" + cfg.Password))
		msg = strings.NewReplacer(plain, "xxxxx", cfg.Password, "xxxxx").Replace(msg)
	}
	msg = output.Printable(strings.Join(strings.Fields(msg), " "))
	if len(msg) > 160 {
		msg = msg[:160] + "..."
	}
	return fmt.Errorf("%s: the server answered %d %s", stage, te.Code, msg)
}
