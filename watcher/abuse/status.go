package abuse

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/enrich"
	"github.com/helpwatch/helpwatch/watcher/netguard"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// StatusStore is what Status reads and records; the store implements it.
type StatusStore interface {
	ReportedDomains(ctx context.Context, open bool) ([]store.ReportedDomain, error)
	Case(ctx context.Context, registrable string) (*watcher.Case, bool, error)
	RecordCheck(ctx context.Context, c store.Check) error
	RecordTakedown(ctx context.Context, reportID int64, name string, at time.Time, state string) error
	// SeenUp reports whether name was ever seen up: a live check, a site that answered, or an
	// address in its enrichment. A name never seen up that is dark now was not taken down.
	SeenUp(ctx context.Context, name string) (bool, error)
}

// Checker decides whether a domain is still up: its name resolves, its registration is not on
// hold, and something answers on its web ports.
type Checker struct {
	DNS  *enrich.Resolver
	RDAP *enrich.RDAP // optional: registry holds and deletions
	// DialTimeout bounds each web-port probe (default 5 s).
	DialTimeout time.Duration
	// Guard decides which addresses may be probed (nil: public addresses only): a scam name
	// pointing into our own network must not make us connect there.
	Guard *netguard.Guard
	// Dial opens a probe connection after the guard allowed it (default net.Dialer); tests
	// route it to 127.0.0.1.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Gone, when set, looks at what a name that answers serves now, and reports whether the
	// abuse is gone from it (capture.Capturer.Gone: every visitor profile, so that a cloaking
	// kit is not taken for gone). Without it, a site that answers is live.
	Gone func(ctx context.Context, name string) (gone bool, detail string)
}

// maxNamesPerStatus bounds the names of a case probed in one status check.
const maxNamesPerStatus = 3

// Check returns the state of a case now: suspended or deleted at its registry, else live when
// any of its names (at most a few) resolves and answers on a web port (and, with Gone, still
// serves the abuse), else cleared when one answers without it, else dark.
func (c *Checker) Check(ctx context.Context, registrable string, names []string) store.Check {
	out := store.Check{Name: registrable, At: time.Now().UTC(), State: store.StateUnknown}
	if c.RDAP != nil {
		reg := c.RDAP.Lookup(ctx, registrable)
		switch reg.State {
		case watcher.NotFound:
			out.State, out.Detail = store.StateDark, "registration deleted ("+reg.Source+")"
			return out
		case watcher.Found:
			for _, s := range reg.Statuses {
				if strings.Contains(strings.ToLower(strings.ReplaceAll(s, " ", "")), "hold") {
					out.State, out.Detail = store.StateSuspended, "registry status "+s
					return out
				}
			}
		}
	}
	if len(names) == 0 {
		names = []string{registrable}
	}
	var details, cleared []string
	known := false
	for _, name := range names[:min(len(names), maxNamesPerStatus)] {
		var addrs []string
		nx, failed := false, false
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			recs, rcode, err := c.DNS.Query(ctx, name, qt)
			if err != nil {
				details = append(details, name+": DNS: "+err.Error())
				failed = true
				break
			}
			if rcode == dns.RcodeNameError {
				nx = true
				break
			}
			addrs = append(addrs, recs...)
		}
		switch {
		case failed:
			continue
		case nx:
			details = append(details, name+": NXDOMAIN")
		case len(addrs) == 0:
			details = append(details, name+": no address")
		default:
			up, detail := c.reachable(ctx, addrs)
			if up && c.Gone != nil {
				if gone, what := c.Gone(ctx, name); gone {
					cleared = append(cleared, name+": "+detail+"; "+what)
					continue
				}
			}
			if up {
				out.State, out.Detail = store.StateLive, name+": "+detail
				return out
			}
			details = append(details, name+": "+detail)
		}
		known = true
	}
	// No name is live. One that answers without the abuse makes the case cleared (its host
	// took the page down); else, once a name was looked at, dark.
	out.Detail = strings.Join(append(cleared, details...), "; ")
	switch {
	case len(cleared) > 0:
		out.State = store.StateCleared
	case known:
		out.State = store.StateDark
	}
	return out
}

// reachable probes the web ports of the addresses (443 first, then 80).
func (c *Checker) reachable(ctx context.Context, addrs []string) (bool, string) {
	timeout := c.DialTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	probed := 0
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			continue
		}
		for _, port := range []string{"443", "80"} {
			if c.Guard.Check(ip.String(), ip, port) != nil {
				continue
			}
			probed++
			dctx, cancel := context.WithTimeout(ctx, timeout)
			conn, err := c.dial(dctx, "tcp", net.JoinHostPort(ip.String(), port))
			cancel()
			if err == nil {
				conn.Close()
				return true, fmt.Sprintf("answers on %s port %s", ip, port)
			}
		}
	}
	if probed == 0 {
		return false, "resolves only to private or reserved addresses"
	}
	return false, "site down: nothing answers on ports 443 or 80 of " + strings.Join(addrs, ", ")
}

func (c *Checker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if c.Dial != nil {
		return c.Dial(ctx, network, addr)
	}
	return c.Guard.DialContext(nil)(ctx, network, addr)
}

// Status re-checks every reported domain not yet taken down, records each check, and records a
// takedown the first time a domain is dark or suspended after having been seen up. A domain
// that never resolved or answered was not taken down by anyone: it is reported as never up,
// stays open, and is checked again next time (scam sites often go live days after their
// certificate).
func Status(ctx context.Context, st StatusStore, c *Checker) ([]store.Check, error) {
	open, err := st.ReportedDomains(ctx, true)
	if err != nil {
		return nil, err
	}
	var out []store.Check
	checked := map[string]store.Check{}
	for _, d := range open {
		chk, ok := checked[d.Name]
		if !ok {
			var names []string
			if cs, ok, err := st.Case(ctx, d.Name); err == nil && ok {
				names = namesToProbe(cs)
			}
			chk = c.Check(ctx, d.Name, names)
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			if chk.State == store.StateDark {
				up, err := st.SeenUp(ctx, d.Name)
				if err != nil {
					return out, err
				}
				if !up {
					chk.State, chk.Detail = store.StateNeverUp, chk.Detail+"; never seen up, so not counted as a takedown"
				}
			}
			if err := st.RecordCheck(ctx, chk); err != nil {
				return out, err
			}
			checked[d.Name] = chk
			out = append(out, chk)
		}
		if chk.State == store.StateDark || chk.State == store.StateSuspended || chk.State == store.StateCleared {
			if err := st.RecordTakedown(ctx, d.ReportID, d.Name, chk.At, chk.State); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// namesToProbe is the case's registrable domain and www first, then its other names.
func namesToProbe(c *watcher.Case) []string {
	out := []string{c.Registrable}
	for _, n := range c.Names {
		if n.Name == "www."+c.Registrable {
			out = append(out, n.Name)
		}
	}
	for _, n := range c.Names {
		if n.Name != c.Registrable && n.Name != "www."+c.Registrable {
			out = append(out, n.Name)
		}
	}
	return out
}
