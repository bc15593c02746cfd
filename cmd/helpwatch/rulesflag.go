package main

import (
	"flag"

	"github.com/helpwatch/helpwatch/rules"
)

// addRulesFlag registers --rules on fs; the returned function loads the chosen rule set.
func addRulesFlag(fs *flag.FlagSet) func() (*rules.RuleSet, error) {
	path := fs.String("rules", "", "rule file (YAML) replacing the embedded default rules")
	return func() (*rules.RuleSet, error) {
		if *path == "" {
			return rules.Default()
		}
		return rules.LoadFile(*path)
	}
}
