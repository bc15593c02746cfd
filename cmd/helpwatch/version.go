package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/helpwatch/helpwatch/rules"
)

func runVersion(args []string, stdout, stderr io.Writer) error {
	rs, err := rules.Default()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "helpwatch %s, default rules %s\n", buildVersion(), rs.Version)
	return nil
}

// buildVersion is the module version, or "devel" with the commit of a build from a checkout.
func buildVersion() string {
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
		// A build from a checkout names its commit, so a report can say which code made it.
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+changes"
				}
			}
		}
		if rev != "" {
			version += " (" + rev[:min(12, len(rev))] + dirty + ")"
		}
	}
	return version
}
