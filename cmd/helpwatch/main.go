// Command helpwatch finds helpline-scam and look-alike domains impersonating printer brands.
//
// Subcommands are thin: they parse flags, call a package and print.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand: run gets the arguments after its name.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"watch":     {"follow Certificate Transparency, score every name, store findings (the main job)", runWatch},
		"work":      {"work the job queue: enrichment and site checks (after a replay, or on more machines)", runWork},
		"findings":  {"list the stored cases with their scores, facts and labels", runFindings},
		"jobs":      {"the job queue by kind and state, and the jobs that failed with why", runJobs},
		"show":      {"print one case in full: evidence, reports and timeline", runShow},
		"serve":     {"the analysts' web console (queue, cases, labels, approvals, status)", runServe},
		"users":     {"the console's accounts: add, passwd, disable, enable, list", runUsers},
		"report":    {"the daily domain report (HTML, Markdown, CSV or JSON)", runReport},
		"abuse":     {"prepare, send and follow up registrar abuse reports", runAbuse},
		"notify":    {"notifications: check a settings file, send a test event, list what was sent", runNotify},
		"sweep":     {"find the brands' look-alikes that exist without a certificate (DNS), and store them as cases", runSweep},
		"export":    {"cases as MISP events, a STIX 2.1 bundle or CSV; push to MISP", runExport},
		"label":     {"record an analyst's label (scam, benign, unsure) for cases", runLabel},
		"site":      {"check what a site or saved page shows (clone, helpline, parked, benign)", runSite},
		"refs":      {"the site check's fingerprints of brand pages and known scam kits", runRefs},
		"campaigns": {"checked sites that share a phone number, chat account or kit", runCampaigns},
		"enrich":    {"look names up (DNS, RDAP, WHOIS) and revise their scores, or work through the queue", runEnrich},
		"record":    {"write a live certstream to a file for replay", runRecord},
		"logs":      {"the CT logs a watch follows, why, and each one's position and lag", runLogs},
		"score":     {"score names from files or stdin (one per line)", runScore},
		"rules":     {"lint, explain, test, diff, sweep or show rule files", runRules},
		"version":   {"print the version and the default rule-set version", runVersion},
	}
}

// exitError carries a specific exit status (2 for usage errors, 1 for failed gates).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// quietError is a failure the command already reported in full as it happened: main sets the
// exit status and prints nothing more.
type quietError struct{ err error }

func (e *quietError) Error() string { return e.err.Error() }
func (e *quietError) Unwrap() error { return e.err }

func usageError(format string, args ...any) error {
	return &exitError{2, fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" || args[0] == "-v" {
		args = append([]string{"version"}, args[1:]...)
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "helpwatch: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
	err := cmd.run(args[1:], stdout, stderr)
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var quiet *quietError
	if !errors.As(err, &quiet) {
		fmt.Fprintf(stderr, "helpwatch %s: %v\n", args[0], err)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `helpwatch finds domains impersonating printer brands (HP, Canon, Epson, Brother,
Lexmark, Xerox, ...) for helpline and driver-setup scams, and explains every point it gives.

Usage:
  helpwatch <command> [flags] [arguments]

Commands:
`)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, `
Run 'helpwatch <command> --help' for the flags of a command.
`)
}

// newFlagSet returns a flag set that prints its usage to stderr with a description.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", strings.TrimSpace(usage))
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses flags allowing them before and after positional arguments
// ("helpwatch score names.txt --format table").
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &exitError{2, err}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if rest[0] == "--" {
			return append(positional, rest[1:]...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// flagSet reports whether the flag name was given on the command line (not just defaulted).
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// subcommandHelp answers a command of subcommands called without one, or asked for help: the
// usage on stderr, and a usage error naming the subcommands when none was given. done says
// the caller has nothing more to do.
func subcommandHelp(args []string, usage string, stderr io.Writer, name, subs string) (done bool, err error) {
	if len(args) > 0 && args[0] != "-h" && args[0] != "--help" && args[0] != "help" {
		return false, nil
	}
	fmt.Fprintln(stderr, usage)
	if len(args) == 0 {
		return true, usageError("%s needs a subcommand: %s", name, subs)
	}
	return true, nil
}
