package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/helpwatch/helpwatch/rules"
)

func runVersion(args []string, stdout, stderr io.Writer) error {
	version := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	rs, err := rules.Default()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "helpwatch %s, default rules %s\n", version, rs.Version)
	return nil
}
