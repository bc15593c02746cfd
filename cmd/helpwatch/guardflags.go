package main

import (
	"flag"

	"github.com/helpwatch/helpwatch/watcher/netguard"
)

// guardFlags configure the address guard of every command that connects somewhere because an
// outside answer named it (sites, RDAP, WHOIS, CT logs).
type guardFlags struct {
	hosts   listFlag
	private *bool
}

func addGuardFlags(fs *flag.FlagSet) *guardFlags {
	g := &guardFlags{}
	fs.Var(&g.hosts, "allow-host", "let this server through the address guard although it is private or loopback: HOST or HOST:PORT (repeatable; a self-hosted RDAP, WHOIS or CT log mirror)")
	g.private = fs.Bool("allow-private", false, "let every private, loopback and reserved address through the guard (a lab network; prefer --allow-host)")
	return g
}

func (g *guardFlags) build() (*netguard.Guard, error) {
	guard := &netguard.Guard{AllowPrivate: *g.private}
	for _, h := range g.hosts {
		if err := guard.AllowHost(h); err != nil {
			return nil, usageError("%v", err)
		}
	}
	return guard, nil
}
