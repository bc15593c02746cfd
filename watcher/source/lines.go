// Package source turns the outside world into certificate events and names to score: the public
// certstream through certstream-go, any certstream-compatible server through our own websocket
// client, replays of recorded messages or name lists, and plain name lists for corpora.
package source

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxLineLen bounds one input line. A DNS name is at most 253 characters; anything much longer
// is not a name, and reading it whole would let one line exhaust memory.
const MaxLineLen = 4096

// ErrLineTooLong is reported for a line over MaxLineLen; the rest of that line is skipped.
var ErrLineTooLong = fmt.Errorf("line longer than %d bytes", MaxLineLen)

// NameListOptions says how to read a name list.
type NameListOptions struct {
	// FirstField takes the first tab- or space-separated field (corpus TSV files with evidence
	// columns) and skips a header line whose first field is "domain".
	FirstField bool
}

// ReadNames calls fn for every name in r, in order, with its 1-based line number. Blank lines
// and lines starting with '#' are skipped. A line that cannot be a name is passed with a
// non-nil error and the reading goes on; an error returned by fn stops it.
func ReadNames(r io.Reader, opts NameListOptions, fn func(line int, name string, err error) error) error {
	return readLines(r, MaxLineLen, func(lineNo int, raw []byte, tooLong bool) error {
		if tooLong {
			return fn(lineNo, strings.TrimSpace(string(raw))+"...", ErrLineTooLong)
		}
		if name, ok := parseNameLine(raw, opts, lineNo); ok {
			return fn(lineNo, name, nil)
		}
		return nil
	})
}

// readLines calls fn for every line of r with its 1-based number. raw is only valid during the
// call. A line over limit bytes is passed as a 64-byte prefix with tooLong set, and the rest of
// it is skipped without being held in memory.
func readLines(r io.Reader, limit int, fn func(lineNo int, raw []byte, tooLong bool) error) error {
	br := bufio.NewReaderSize(r, max(64<<10, limit+1))
	for lineNo := 1; ; lineNo++ {
		raw, err := br.ReadSlice('\n')
		tooLong := len(raw) > limit || errors.Is(err, bufio.ErrBufferFull)
		if tooLong {
			raw = []byte(string(raw[:min(64, len(raw))])) // ReadSlice reuses its buffer
		}
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n') // discard the rest of an over-long line
		}
		if len(raw) == 0 && err == io.EOF {
			return nil
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("line %d: %w", lineNo, err)
		}
		if ferr := fn(lineNo, raw, tooLong); ferr != nil {
			return ferr
		}
		if err == io.EOF {
			return nil
		}
	}
}

func parseNameLine(raw []byte, opts NameListOptions, lineNo int) (string, bool) {
	line := strings.TrimSpace(string(raw))
	if line == "" || line[0] == '#' {
		return "", false
	}
	if opts.FirstField {
		if i := strings.IndexAny(line, "\t "); i >= 0 {
			line = line[:i]
		}
		if lineNo == 1 && strings.EqualFold(line, "domain") {
			return "", false
		}
	}
	return line, true
}

// OpenNameFile opens a name list by path; "-" is standard input.
func OpenNameFile(path string) (io.ReadCloser, error) {
	if path == "-" {
		return io.NopCloser(os.Stdin), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// ReadNameFile reads every name of a list file into memory, for corpora; line errors are
// returned with the file name and line.
func ReadNameFile(path string, opts NameListOptions) ([]string, error) {
	f, err := OpenNameFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	err = ReadNames(f, opts, func(line int, name string, err error) error {
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return names, nil
}
