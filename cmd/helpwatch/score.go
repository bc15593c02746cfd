package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/output"
	"github.com/helpwatch/helpwatch/watcher/source"
)

const scoreUsage = `usage: helpwatch score [--rules FILE] [--format jsonl|table|csv] [FILE|-]...

Scores one name per line (stdin when no file is given; blank lines and # comments are skipped)
and writes one record per name, in input order. Names that cannot be scored (too long, bad
characters, empty labels, bad punycode) get verdict "invalid" and an error; they never stop
the run.`

// scoreBatch is how many names go to a scorer at once.
const scoreBatch = 1024

var errStopped = errors.New("stopped")

func runScore(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("score", scoreUsage, stderr)
	loadRules := addRulesFlag(fs)
	format := fs.String("format", "jsonl", "output format: jsonl, table or csv")
	files, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	rs, err := loadRules.load()
	if err != nil {
		return err
	}
	w, err := output.NewWriter(stdout, *format)
	if err != nil {
		return usageError("%v", err)
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	// Reading, scoring and writing overlap: one goroutine reads batches of lines, a scorer per
	// core scores them, and this goroutine writes the results in input order.
	batches := make(chan []rules.Input, 4)
	var unread []string
	readDone := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(batches)
		batch := make([]rules.Input, 0, scoreBatch)
		send := func() bool {
			select {
			case batches <- batch:
				batch = make([]rules.Input, 0, scoreBatch)
				return true
			case <-stop:
				return false
			}
		}
		// A file that cannot be read is said once, when it is met, and the others are still
		// scored; the exit status says that something was missed.
		for _, path := range files {
			f, err := source.OpenNameFile(path)
			if err != nil {
				unread = append(unread, path)
				fmt.Fprintf(stderr, "helpwatch score: %v\n", err)
				continue
			}
			err = source.ReadNames(f, source.NameListOptions{}, func(line int, name string, lerr error) error {
				batch = append(batch, rules.Input{Name: name, Err: lerr})
				if len(batch) == scoreBatch && !send() {
					return errStopped
				}
				return nil
			})
			f.Close()
			if err != nil && err != errStopped {
				unread = append(unread, path)
				fmt.Fprintf(stderr, "helpwatch score: %s: %v\n", path, err)
			}
			if err == errStopped {
				return
			}
		}
		if len(batch) > 0 {
			send()
		}
	}()
	stopOnce := sync.OnceFunc(func() { close(stop) })
	err = rs.ScoreInOrder(runtime.GOMAXPROCS(0), batches, func(r *rules.Result) error {
		err := w.Write(r)
		if err != nil {
			stopOnce() // the output is gone: stop reading
		}
		return err
	})
	stopOnce()
	<-readDone
	if err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(unread) > 0 {
		return &exitError{1, &quietError{fmt.Errorf("%d of %d input(s) could not be read", len(unread), len(files))}}
	}
	return nil
}
