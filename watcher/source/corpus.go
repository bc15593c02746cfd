package source

import (
	"errors"
	"fmt"
	"strings"

	"github.com/helpwatch/helpwatch/rules"
)

// Labels of a labeled corpus line are the analysts' labels (rules.Label).
const (
	LabelScam   = rules.LabelScam
	LabelBenign = rules.LabelBenign
	LabelUnsure = rules.LabelUnsure
)

// ParseLabel reads a label, accepting the usual synonyms (rules.ParseLabel).
var ParseLabel = rules.ParseLabel

// Labeled is one line of a labeled corpus.
type Labeled struct {
	Name  string
	Label rules.Label
	Line  int
}

// CorpusError lists every bad line of a labeled corpus, so a user fixes them in one pass.
type CorpusError struct {
	File  string
	Lines []string // "12: no label ..."
	// Unlabeled counts the lines that had a name and no label; when no line had one, the
	// file is a plain name list (which `rules diff` accepts as an unlabeled corpus).
	Unlabeled int
}

// PlainList reports whether the file had names and no labels at all.
func (e *CorpusError) PlainList() bool { return e.Unlabeled > 0 && e.Unlabeled == len(e.Lines) }

func (e *CorpusError) Error() string {
	shown := e.Lines
	more := ""
	if len(shown) > 10 {
		more = fmt.Sprintf("\n(and %d more)", len(shown)-10)
		shown = shown[:10]
	}
	return fmt.Sprintf("%s: %d bad line(s):\n%s:%s%s", e.File, len(e.Lines), e.File, strings.Join(shown, "\n"+e.File+":"), more)
}

// ReadLabeledCorpus reads NAME LABEL lines (tab or space separated; more columns are notes),
// label scam, benign or unsure. Blank lines, # comments and a "domain label" header are
// skipped. Lines without a label or with an unknown one are errors, all reported together.
func ReadLabeledCorpus(path string) ([]Labeled, error) {
	f, err := OpenNameFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Labeled
	cerr := &CorpusError{File: path}
	err = readLines(f, MaxLineLen, func(lineNo int, raw []byte, tooLong bool) error {
		if tooLong {
			cerr.Lines = append(cerr.Lines, fmt.Sprintf("%d: longer than %d bytes", lineNo, MaxLineLen))
			return nil
		}
		line := strings.TrimSpace(string(raw))
		if line == "" || line[0] == '#' {
			return nil
		}
		fields := strings.Fields(line)
		if lineNo == 1 && strings.EqualFold(fields[0], "domain") {
			return nil
		}
		if len(fields) < 2 {
			cerr.Lines = append(cerr.Lines, fmt.Sprintf("%d: %q has no label (want NAME scam|benign|unsure)", lineNo, fields[0]))
			cerr.Unlabeled++
			return nil
		}
		label, ok := ParseLabel(fields[1])
		if !ok {
			cerr.Lines = append(cerr.Lines, fmt.Sprintf("%d: unknown label %q (want scam, benign or unsure)", lineNo, fields[1]))
			return nil
		}
		out = append(out, Labeled{Name: fields[0], Label: label, Line: lineNo})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(cerr.Lines) > 0 {
		if len(out) > 0 {
			cerr.Unlabeled = -1 // some lines are labeled: not a plain list
		}
		return out, cerr
	}
	if len(out) == 0 {
		return nil, errors.New(path + ": no labeled names")
	}
	return out, nil
}
