package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/helpwatch/helpwatch/watcher/console"
	"github.com/helpwatch/helpwatch/watcher/output"
)

const showUsage = `usage: helpwatch show NAME [--db PATH|URL] [--format text|json]

Prints one case in full, as the console's case page shows it: the score with every reason and
its points (and the points before the cap at 100), the names and their certificates (with
crt.sh links), the registration and DNS, each site check with its pages and phone numbers, the
captures (profiles, cloaking, hosting, screenshots by SHA-256), what it shares with other cases,
its abuse reports, and the timeline with who did what. NAME is any name of the case.`

func runShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("show", showUsage, stderr)
	dbPath := dbFlag(fs, "findings database")
	format := fs.String("format", "text", "text or json")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError("show needs one name (helpwatch findings lists them)")
	}
	if *format != "text" && *format != "json" {
		return usageError("--format %q: text or json", *format)
	}
	db, err := openExistingDB(*dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	c, ok, err := db.CaseOfName(ctx, rest[0])
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no case has the name %q in %s (helpwatch findings lists them)", output.Printable(rest[0]), dbName(*dbPath))
	}
	v, err := console.Gather(ctx, db, c)
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(output.SafeJSON(stdout))
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	return console.WriteText(stdout, v)
}
