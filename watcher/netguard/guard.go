// Package netguard decides which addresses helpwatch may connect to on its own initiative.
//
// Every address helpwatch connects to because an outside answer named it (a site and its
// redirects, an RDAP server from the bootstrap file and the links in its answers, a WHOIS
// referral, a CT log from the log list) could point into the network helpwatch runs in: the
// cloud metadata address, a database on loopback, an admin page on 10.0.0.1. The guard checks
// each connection at dial time, on the address actually dialled after name resolution, so a
// name that resolves to a public address once and to 127.0.0.1 the next time (DNS rebinding)
// gains nothing, and redirects are checked like the first request because they dial again.
//
// Private, loopback, link-local, multicast and reserved ranges are refused unless the user
// lets a named server through with --allow-host HOST[:PORT] (a self-hosted RDAP, WHOIS or CT
// mirror; tests), or opens everything with --allow-private.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrBlocked is the guard refusing a connection; errors.Is finds it in every refusal.
var ErrBlocked = errors.New("refusing to connect to a private, loopback, link-local, multicast or reserved address")

// BlockedError is one refusal: the name asked for, the address it resolved to, and the port.
type BlockedError struct {
	Host string // as requested (a name or an address literal)
	Addr netip.Addr
	Port string
}

func (e *BlockedError) Error() string {
	what := e.Addr.String()
	if e.Host != "" && e.Host != what {
		what = e.Host + " (" + what + ")"
	}
	return fmt.Sprintf("refusing to connect to %s port %s: a %s address (--allow-host %s lets a server of your own through)",
		what, e.Port, Kind(e.Addr), net.JoinHostPort(e.Addr.String(), e.Port))
}

func (e *BlockedError) Unwrap() error { return ErrBlocked }

// reserved ranges refused besides what netip classifies: carrier-grade NAT, the IETF protocol
// block, benchmarking, the old class E and broadcast, NAT64.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("240.0.0.0/4"), netip.MustParsePrefix("64:ff9b::/96"),
}

// Blocked reports whether an address is outside the public Internet (so refused by default).
func Blocked(ip netip.Addr) bool { return Kind(ip) != "public" }

// Kind names the range an address is in: "public", or why it is refused.
func Kind(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		return "multicast"
	case ip.IsUnspecified():
		return "unspecified"
	}
	for _, p := range reserved {
		if p.Contains(ip) {
			return "reserved"
		}
	}
	return "public"
}

// Guard is the policy. The zero value (and a nil *Guard) refuses every non-public address.
// A Guard is safe for concurrent use once configured.
type Guard struct {
	// AllowPrivate lets every address through (a lab network; tests that need it).
	AllowPrivate bool
	// Resolver resolves names for DialContext (default net.DefaultResolver); tests point it at
	// a local DNS server.
	Resolver *net.Resolver
	allowed  []hostPort
}

type hostPort struct {
	host string // lower-case name, or a canonical address literal
	port string // "" for any port
}

// AllowHost lets one server through: "HOST" (any port) or "HOST:PORT", HOST a name or an
// address ("[::1]:8443" for IPv6 with a port). A name matches when it is the name dialled; an
// address matches the address connected to, whatever name led there.
func (g *Guard) AllowHost(spec string) error {
	hp, err := parseHostPort(spec)
	if err != nil {
		return err
	}
	g.allowed = append(g.allowed, hp)
	return nil
}

func parseHostPort(spec string) (hostPort, error) {
	s := strings.TrimSpace(spec)
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if host == "" {
		return hostPort{}, fmt.Errorf("allowed host %q: want HOST or HOST:PORT", spec)
	}
	if port != "" {
		var n int
		if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != port {
			return hostPort{}, fmt.Errorf("allowed host %q: port %q is not a number from 1 to 65535", spec, port)
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return hostPort{host: ip.Unmap().String(), port: port}, nil
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if strings.ContainsAny(host, " /@:") {
		return hostPort{}, fmt.Errorf("allowed host %q: %q is neither a host name nor an address", spec, host)
	}
	return hostPort{host: host, port: port}, nil
}

// Allowed returns the --allow-host entries, for logs.
func (g *Guard) Allowed() []string {
	if g == nil {
		return nil
	}
	out := make([]string, len(g.allowed))
	for i, a := range g.allowed {
		out[i] = a.host
		if a.port != "" {
			out[i] = net.JoinHostPort(a.host, a.port)
		}
	}
	return out
}

// Check decides one connection: host is the name (or literal) that was asked for, ip the
// address about to be connected to, port its port. nil means go ahead.
func (g *Guard) Check(host string, ip netip.Addr, port string) error {
	ip = ip.Unmap()
	if !Blocked(ip) {
		return nil
	}
	if g != nil {
		if g.AllowPrivate {
			return nil
		}
		name := strings.ToLower(strings.TrimSuffix(host, "."))
		for _, a := range g.allowed {
			if (a.host == name || a.host == ip.String()) && (a.port == "" || a.port == port) {
				return nil
			}
		}
	}
	return &BlockedError{Host: host, Addr: ip, Port: port}
}

// PlainHost reports whether h is a lower-case DNS name or IPv4 literal and nothing else
// (letters, digits, hyphens and dots; at most 253 bytes; not starting with a dot or hyphen):
// safe to hand to a protocol or a rule list that gives other characters a meaning.
func PlainHost(h string) bool {
	if h == "" || len(h) > 253 || h[0] == '.' || h[0] == '-' {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Resolve returns the first address of host that Check lets through on port: for a client that
// will connect on its own, pinned to that address (a browser told to use it and nothing else).
func (g *Guard) Resolve(ctx context.Context, host, port string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap(), g.Check(host, ip, port)
	}
	r := net.DefaultResolver
	if g != nil && g.Resolver != nil {
		r = g.Resolver
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	var refused error
	for _, ip := range ips {
		if err := g.Check(host, ip, port); err == nil {
			return ip.Unmap(), nil
		} else if refused == nil {
			refused = err
		}
	}
	if refused == nil {
		refused = fmt.Errorf("%s has no address", host)
	}
	return netip.Addr{}, refused
}

// DialContext dials through d (nil: a 5-second connect timeout) and refuses, at connect time,
// every address Check refuses. Use it as an http.Transport's DialContext or for raw TCP.
func (g *Guard) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if d == nil {
		d = &net.Dialer{Timeout: 5 * time.Second}
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %q: %w", addr, err)
		}
		dd := *d
		if dd.Resolver == nil && g != nil {
			dd.Resolver = g.Resolver
		}
		dd.Control = func(_, address string, _ syscall.RawConn) error {
			h, p, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(h)
			if err != nil {
				return &BlockedError{Host: host, Port: p}
			}
			return g.Check(host, ip, p)
		}
		return dd.DialContext(ctx, network, addr)
	}
}

// HTTPClient is a bounded client whose every connection (redirects included) goes through the
// guard: connect within 5 s, headers within timeout, the whole exchange within timeout, at
// most maxRedirects redirects, http and https only. No proxy: a proxy would dial on our behalf
// where the guard cannot see.
func (g *Guard) HTTPClient(timeout time.Duration, maxRedirects int) *http.Client {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:            g.DialContext(&net.Dialer{Timeout: min(timeout, 5*time.Second)}),
			TLSHandshakeTimeout:    min(timeout, 5*time.Second),
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        60 * time.Second,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to %q refused", req.URL.Scheme)
			}
			return nil
		},
	}
}
