package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher/netguard"
)

// guardFlags configure the address guard of every command that connects somewhere because an
// outside answer named it (sites, RDAP, WHOIS, CT logs), and the resolver it looks names up
// with.
type guardFlags struct {
	hosts     listFlag
	private   *bool
	resolvers listFlag
}

func addGuardFlags(fs *flag.FlagSet) *guardFlags {
	g := &guardFlags{}
	fs.Var(&g.hosts, "allow-host", "let this server through the address guard although it is private or loopback: HOST or HOST:PORT (repeatable; a self-hosted RDAP, WHOIS or CT log mirror)")
	g.private = fs.Bool("allow-private", false, "let every private, loopback and reserved address through the guard (a lab network; prefer --allow-host)")
	fs.Var(&g.resolvers, "resolver", "DNS resolver host:port for every lookup: the enrichment's DNS facts and the host names of sites, RDAP, WHOIS and CT log servers (repeatable, tried in order; default: /etc/resolv.conf)")
	return g
}

// servers are the --resolver addresses with the port defaulted to 53.
func (g *guardFlags) servers() []string {
	out := make([]string, 0, len(g.resolvers))
	for _, s := range g.resolvers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			s = net.JoinHostPort(strings.Trim(s, "[]"), "53")
		}
		out = append(out, s)
	}
	return out
}

func (g *guardFlags) build() (*netguard.Guard, error) {
	guard := &netguard.Guard{AllowPrivate: *g.private}
	for _, h := range g.hosts {
		if err := guard.AllowHost(h); err != nil {
			return nil, usageError("--allow-host: %v", err)
		}
	}
	if servers := g.servers(); len(servers) > 0 {
		guard.Resolver = resolverFor(servers)
	}
	return guard, nil
}

// resolverFor is a resolver that asks the first of servers that can be dialled
// instead of the system's: the host names of sites and registry servers are then resolved
// where the team's DNS facts are.
func resolverFor(servers []string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var errs []error
		d := net.Dialer{Timeout: 2 * time.Second}
		for _, s := range servers {
			c, err := d.DialContext(ctx, network, s)
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}}
}
