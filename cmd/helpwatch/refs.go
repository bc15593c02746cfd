package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/helpwatch/helpwatch/watcher/site"
)

const refsUsage = `usage: helpwatch refs add --refs FILE --kind kit|reference [--brand NAME] [--name NAME] PAGE...
       helpwatch refs update --refs FILE [--rules FILE]
       helpwatch refs list --refs FILE

The fingerprint library the site check compares pages with (--refs of 'site check'): the
brands' genuine pages, whose copies are clones, and known scam kits. 'add' fingerprints saved
pages; 'update' fetches the reference URLs of the rule file (site.references) through the same
guarded fetcher as the site check.`

func runRefs(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, refsUsage)
		if len(args) == 0 {
			return usageError("refs needs a subcommand: add, update or list")
		}
		return flag.ErrHelp
	}
	if args[0] != "add" && args[0] != "update" && args[0] != "list" {
		fmt.Fprintln(stderr, refsUsage)
		return usageError("unknown refs subcommand %q (add, update or list)", args[0])
	}
	fs := newFlagSet("refs "+args[0], refsUsage, stderr)
	path := fs.String("refs", "refs.json", "fingerprint library file")
	kind := fs.String("kind", "kit", "add: kit (a known scam kit) or reference (a brand's genuine page)")
	brand := fs.String("brand", "", "add: the brand the page belongs to or imitates")
	name := fs.String("name", "", "add: the fingerprint's name (default: the file name)")
	loadRules := addRulesFlag(fs)
	gf := addGuardFlags(fs)
	rest, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	lib, err := site.LoadLibrary(*path)
	if err != nil {
		return err
	}
	switch args[0] {
	case "list":
		for _, f := range lib.Fingerprints {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%d shingles\n", f.Kind, f.Brand, f.Name, len(f.Shingles))
		}
		return nil
	case "add":
		if *kind != "kit" && *kind != "reference" {
			return usageError("--kind %q: kit or reference", *kind)
		}
		if len(rest) == 0 {
			return usageError("refs add needs PAGE files")
		}
		for _, f := range rest {
			body, _, err := site.ReadSaved(f)
			if err != nil {
				return err
			}
			n := *name
			if n == "" || len(rest) > 1 {
				n = filepath.Base(f)
			}
			p := site.ExtractText(body)
			if site.IsHTML("", body) {
				p = site.ExtractHTML(body, nil)
			}
			lib.Add(site.NewFingerprint(n, *kind, *brand, p.Markup, p.Text))
			fmt.Fprintf(stdout, "added %s %s\n", *kind, n)
		}
	case "update":
		rs, err := loadRules.load()
		if err != nil {
			return err
		}
		ctx, stop := watchContext()
		defer stop()
		guard, err := gf.build()
		if err != nil {
			return err
		}
		f := newSiteFetcher(guard)
		brands := make([]string, 0, len(rs.Source.Site.References))
		for b := range rs.Source.Site.References {
			brands = append(brands, b)
		}
		sort.Strings(brands)
		failed := 0
		for _, b := range brands {
			for _, u := range rs.Source.Site.References[b] {
				got := f.Fetch(ctx, u)
				if got.Status != 200 || got.Err != nil {
					failed++
					fmt.Fprintf(stderr, "%s: %d %v\n", u, got.Status, got.Err)
					continue
				}
				p := site.ExtractHTML(got.Body, nil)
				lib.Add(site.NewFingerprint(u, "reference", b, p.Markup, p.Text))
				fmt.Fprintf(stdout, "fingerprinted %s (%s)\n", u, b)
			}
		}
		if failed > 0 {
			defer fmt.Fprintf(stderr, "%d reference page(s) could not be fetched; the library keeps their previous fingerprints\n", failed)
		}
	default:
		return usageError("unknown refs subcommand %q", args[0])
	}
	if err := lib.Save(*path); err != nil {
		return err
	}
	_, err = os.Stat(*path)
	return err
}
