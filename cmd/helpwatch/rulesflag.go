package main

import (
	"flag"

	"github.com/helpwatch/helpwatch/rules"
)

// rulesFlag is --rules: a rule file replacing the embedded default rules.
type rulesFlag struct{ path *string }

// addRulesFlag registers --rules on fs.
func addRulesFlag(fs *flag.FlagSet) rulesFlag {
	return rulesFlag{fs.String("rules", "", "rule file (YAML) replacing the embedded default rules")}
}

// load returns the chosen rule set: the file, else the embedded default rules. For commands
// that score without a database.
func (f rulesFlag) load() (*rules.RuleSet, error) {
	if *f.path == "" {
		return rules.Default()
	}
	return rules.LoadFile(*f.path)
}

// given returns the rule file the user named, nil when --rules was not given: a command that
// writes to the database then scores with the deployment's active rule set.
func (f rulesFlag) given() (*rules.RuleSet, error) {
	if *f.path == "" {
		return nil, nil
	}
	return rules.LoadFile(*f.path)
}
