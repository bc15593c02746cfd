package enrich

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/likexian/whois"
	whoisparser "github.com/likexian/whois-parser"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/internal/safe"
	"github.com/helpwatch/helpwatch/watcher/netguard"
)

// WHOIS is the fallback for TLDs without RDAP, or when RDAP fails: port 43 through
// likexian/whois, parsed with likexian/whois-parser. The referral from the registry to the
// registrar is followed here, not by the library (whose referral parsing panics on an answer
// that ends in the referral line), and every connection, referral included, goes through the
// address guard: a registry answer must not make us connect into our own network. Each answer
// is bounded in size and time; a server that stops mid-answer still yields what it sent, and a
// library that crashes on an answer fails that lookup only.
type WHOIS struct {
	// IANAServer answers which server holds a TLD (default whois.iana.org:43).
	IANAServer string
	// Server, when set, is asked for every TLD instead (a local mirror, or a test).
	Server   string
	Timeout  time.Duration // per connection, connect included (default 10 s)
	MaxBytes int64         // per answer (default 256 KiB)
	Limits   *Limits
	// Guard decides which addresses may be dialled (nil: public addresses only).
	Guard *netguard.Guard

	tldServers sync.Map // TLD -> "host:port"
	// dial replaces the network in fuzz tests (answers served from memory).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (w *WHOIS) timeout() time.Duration {
	if w.Timeout > 0 {
		return w.Timeout
	}
	return 10 * time.Second
}

// whoisDialer is handed to likexian/whois: its own timeout does not bound the connect, and it
// reads answers whole; this dialer bounds both, and paces each server.
type whoisDialer struct {
	ctx       context.Context
	w         *WHOIS
	truncated atomic.Bool
	partial   atomic.Bool
}

func (d *whoisDialer) Dial(network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if d.w.Limits != nil {
		if err := d.w.Limits.Wait(d.ctx, host); err != nil {
			return nil, err
		}
	}
	dial := d.w.dial
	if dial == nil {
		dial = d.w.Guard.DialContext(&net.Dialer{Timeout: d.w.timeout()})
	}
	c, err := dial(d.ctx, network, addr)
	if err != nil {
		return nil, err
	}
	// likexian/whois reads without a context: closing the socket when the lookup is cancelled
	// is what lets a stopping watch return at once. d.ctx is per lookup, so this is released.
	context.AfterFunc(d.ctx, func() { c.Close() })
	max := d.w.MaxBytes
	if max <= 0 {
		max = 256 << 10
	}
	return &boundedConn{Conn: c, remaining: max, dialer: d}, nil
}

// boundedConn ends the answer (EOF) after its byte budget, and turns a timeout after some text
// into an EOF too, so that the text already received is parsed instead of thrown away.
type boundedConn struct {
	net.Conn
	remaining int64
	got       int64
	dialer    *whoisDialer
}

func (b *boundedConn) Read(p []byte) (int, error) {
	if b.remaining <= 0 {
		b.dialer.truncated.Store(true)
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.Conn.Read(p)
	b.remaining -= int64(n)
	b.got += int64(n)
	var ne net.Error
	if err != nil && b.got > 0 && errors.As(err, &ne) && ne.Timeout() {
		b.dialer.partial.Store(true)
		return n, io.EOF
	}
	return n, err
}

var (
	reAbuseEmail = regexp.MustCompile(`(?im)^\s*(?:registrar abuse contact email|abuse[- ]mailbox|abuse contact email|abuse[- ]?e-?mail)\s*:\s*(\S+@\S+)`)
	// reAbuseInline catches "E-mail: abuse: abuse@registry.tk, copyright: ..." style lines.
	reAbuseInline = regexp.MustCompile(`(?i)\babuse\s*:\s*([^\s,;<>]+@[^\s,;<>]+)`)
	reAbusePhone  = regexp.MustCompile(`(?im)^\s*(?:registrar abuse contact phone|abuse[- ]phone)\s*:\s*(\+?[0-9][0-9 .()-]{4,})`)
	reIANAID      = regexp.MustCompile(`(?im)^\s*registrar iana id\s*:\s*(\d+)`)
	reRefer       = regexp.MustCompile(`(?im)^\s*(?:refer|whois)\s*:\s*(\S+)`)
	// reRegistrar is the thin registry's pointer to the registrar's server.
	reRegistrar = regexp.MustCompile(`(?im)^\s*(?:registrar whois server|whois server|referralserver)\s*:[ \t]*(\S+)`)
	reRateLimit = regexp.MustCompile(`(?i)(query limit|rate limit|limit exceeded|too many (requests|queries)|exceeded the (maximum|allowed)|try again later)`)
)

// Lookup asks the TLD's WHOIS server (and the registrar it refers to) about domain.
func (w *WHOIS) Lookup(ctx context.Context, domain string) watcher.Registration {
	reg := w.lookup(ctx, domain)
	reg.Sanitize()
	return reg
}

func (w *WHOIS) lookup(ctx context.Context, domain string) watcher.Registration {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg := watcher.Registration{Source: "whois"}
	unknown := func(format string, args ...any) watcher.Registration {
		reg.State, reg.Reason = watcher.Unknown, fmt.Sprintf(format, args...)
		return reg
	}
	server, err := w.serverFor(ctx, domain)
	if err != nil {
		return unknown("%v", err)
	}
	reg.Server = server
	text, truncated, partial, err := w.query(ctx, domain, server)
	if strings.TrimSpace(text) == "" {
		if err == nil {
			err = errors.New("empty answer")
		}
		var paused *PausedError
		if errors.As(err, &paused) {
			reg.RetryAt = paused.Until
		}
		return unknown("%s: %v", server, err)
	}
	// A thin registry names the registrar's server; its answer holds the contacts. The two
	// answers are read together, registry first, as the library would have joined them.
	referralNote := ""
	if ref := referral(text); ref != "" && withPort(ref) != withPort(server) && ctx.Err() == nil {
		more, t2, p2, rerr := w.query(ctx, domain, ref)
		if strings.TrimSpace(more) != "" {
			text += "\n" + more
			reg.Server = server + " + " + ref
			truncated, partial = truncated || t2, partial || p2 || rerr != nil
		} else {
			if rerr == nil {
				rerr = errors.New("empty answer")
			}
			referralNote = fmt.Sprintf("the registrar's WHOIS server %s did not answer: %v", ref, rerr)
		}
	}
	host := hostOnly(server)
	if reRateLimit.MatchString(firstLines(text, 5)) {
		pause := time.Duration(0)
		if w.Limits != nil {
			pause = w.Limits.Pause(host, 0)
		}
		reg.RetryAt = time.Now().Add(pause)
		return unknown("%s: rate limited (%q), pausing it for %s", server, firstLines(text, 1), pause)
	}
	var info whoisparser.WhoisInfo
	perr := safe.Do("whois-parser", func() error {
		var err error
		info, err = whoisparser.Parse(text)
		return err
	})
	var crash *safe.PanicError
	switch {
	case errors.As(perr, &crash):
		return unknown("%s: %v", server, perr)
	case errors.Is(perr, whoisparser.ErrNotFoundDomain):
		reg.State = watcher.NotFound
		return reg
	case errors.Is(perr, whoisparser.ErrDomainLimitExceed):
		pause := time.Duration(0)
		if w.Limits != nil {
			pause = w.Limits.Pause(host, 0)
		}
		reg.RetryAt = time.Now().Add(pause)
		return unknown("%s: rate limited, pausing it for %s", server, pause)
	case perr != nil && !errors.Is(perr, whoisparser.ErrReservedDomain) && !errors.Is(perr, whoisparser.ErrPremiumDomain) &&
		!errors.Is(perr, whoisparser.ErrBlockedDomain):
		return unknown("%s: unreadable WHOIS answer: %v", server, perr)
	}
	if w.Limits != nil {
		w.Limits.Recovered(host)
	}
	fillFromWHOIS(&reg, &info, text)
	reg.State = watcher.Found
	switch {
	case truncated:
		reg.Reason = "answer cut at the size limit"
	case partial || err != nil:
		reg.Reason = "partial answer (the server stopped mid-answer)"
	case referralNote != "":
		reg.Reason = referralNote
	}
	return reg
}

// withPort spells a server as host:port, port 43 when none is given, to compare two servers.
func withPort(server string) string {
	if _, _, err := net.SplitHostPort(server); err == nil {
		return strings.ToLower(server)
	}
	return net.JoinHostPort(strings.ToLower(server), "43")
}

// query asks one server once, referrals off, and says whether the answer was cut at the size
// limit or by a stalled server. A crash inside the library is an error like any other.
func (w *WHOIS) query(ctx context.Context, domain, server string) (text string, truncated, partial bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d := &whoisDialer{ctx: ctx, w: w}
	client := whois.NewClient().SetDialer(d).SetTimeout(w.timeout()).SetDisableReferral(true).SetDisableStats(true)
	err = safe.Do("likexian/whois", func() error {
		var qerr error
		text, qerr = client.Whois(domain, server)
		return qerr
	})
	return text, d.truncated.Load(), d.partial.Load(), err
}

// maxReferralLen bounds the server name taken from an answer.
const maxReferralLen = 253 + 6

// referral returns the registrar's WHOIS server named in a registry answer ("host" or
// "host:port"), or "" when there is none or it is not a plain server name. URL-style values
// (whois://, rwhois://, http://) are reduced to their host and port.
func referral(text string) string {
	m := reRegistrar.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	v := strings.ToLower(strings.TrimSpace(m[1]))
	for _, p := range []string{"rwhois://", "whois://", "https://", "http://"} {
		v = strings.TrimPrefix(v, p)
	}
	if i := strings.IndexAny(v, "/?#"); i >= 0 {
		v = v[:i]
	}
	if v == "" || len(v) > maxReferralLen {
		return ""
	}
	host, port := v, ""
	if h, p, err := net.SplitHostPort(v); err == nil {
		host, port = h, p
	}
	if !netguard.PlainHost(host) {
		return ""
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return ""
		}
		return net.JoinHostPort(host, port)
	}
	return host
}

func fillFromWHOIS(reg *watcher.Registration, info *whoisparser.WhoisInfo, text string) {
	if info.Domain != nil {
		if info.Domain.CreatedDateInTime != nil {
			reg.Created = info.Domain.CreatedDateInTime.UTC()
		}
		for _, ns := range info.Domain.NameServers {
			reg.NameServers = append(reg.NameServers, strings.ToLower(strings.TrimSuffix(ns, ".")))
		}
		reg.Statuses = info.Domain.Status
	}
	if info.Registrar != nil {
		reg.Registrar = info.Registrar.Name
		if reg.Registrar == "" {
			reg.Registrar = info.Registrar.Organization
		}
	}
	if m := reAbuseEmail.FindStringSubmatch(text); m != nil {
		reg.AbuseEmail = strings.Trim(m[1], "<>;,")
	} else if m := reAbuseInline.FindStringSubmatch(text); m != nil {
		reg.AbuseEmail = m[1]
	}
	if m := reAbusePhone.FindStringSubmatch(text); m != nil {
		reg.AbusePhone = strings.TrimSpace(m[1])
	}
	if m := reIANAID.FindStringSubmatch(text); m != nil {
		reg.RegistrarIANAID = m[1]
	}
}

// serverFor returns the WHOIS server of domain's TLD: the configured one, a cached answer, or
// IANA's referral.
func (w *WHOIS) serverFor(ctx context.Context, domain string) (string, error) {
	if w.Server != "" {
		return w.Server, nil
	}
	tld := tldOf(domain)
	if s, ok := w.tldServers.Load(tld); ok {
		return s.(string), nil
	}
	iana := w.IANAServer
	if iana == "" {
		iana = "whois.iana.org:43"
	}
	text, _, _, err := w.query(ctx, domain, iana)
	if strings.TrimSpace(text) == "" {
		return "", fmt.Errorf("asking %s for the WHOIS server of .%s: %v", iana, tld, err)
	}
	m := reRefer.FindStringSubmatch(text)
	if m == nil {
		return "", fmt.Errorf("no WHOIS server for .%s (per %s)", tld, iana)
	}
	server := m[1]
	w.tldServers.Store(tld, server)
	return server, nil
}

func hostOnly(server string) string {
	if h, _, err := net.SplitHostPort(server); err == nil {
		return h
	}
	return server
}

func firstLines(text string, n int) string {
	lines := strings.SplitN(strings.TrimSpace(text), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return boundText(strings.TrimSpace(strings.Join(lines, " ")), 200)
}
