package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// dbOpen says how a command opens the findings database.
type dbOpen struct {
	ctx context.Context
	// rules is the rule file given with --rules (nil: the deployment's active set).
	rules *rules.RuleSet
	// activate makes rules the deployment's active set (rules use).
	activate bool
	// mustExist refuses to create a SQLite file: the command reads what a watch made.
	mustExist bool
}

// openDB opens the findings database, with messages that say what to do.
func openDB(path string, o dbOpen) (*store.SQL, error) {
	ctx := o.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if o.mustExist && !store.IsPostgresURL(path) {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no findings database at %s (run 'helpwatch watch' first, or pass --db): %w", path, err)
		}
	}
	db, err := store.Open(ctx, path, store.Options{Rules: o.rules, Activate: o.activate, By: actor()})
	var mismatch *store.RulesMismatchError
	if errors.As(err, &mismatch) {
		return nil, usageError("%v\n  to make %s the deployment's rule set (every case is rescored with it): %s rules use %s --db %s\n  to score with the deployment's rule set: leave out --rules",
			err, mismatch.Given.SourceName, selfCommand(), mismatch.Given.SourceName, dbName(path))
	}
	return db, err
}

// actor names who runs this command, for the records of what it changed: user@host.
func actor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return name
}

// dbName is a --db value as it may be printed: a PostgreSQL URL without its password.
func dbName(path string) string {
	if store.IsPostgresURL(path) {
		return store.Redact(path)
	}
	return path
}
