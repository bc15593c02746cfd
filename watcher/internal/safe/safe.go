// Package safe runs third-party parsers on hostile input so that a bug in one of them (a
// panic on a WHOIS answer, an RDAP document, a page or a certificate) fails that one input
// instead of the whole process.
package safe

import (
	"fmt"
	"runtime"
	"strings"
)

// PanicError is a panic caught by Do: what was running, the value, and where it happened.
type PanicError struct {
	What  string
	Value any
	Where string // the innermost frames outside the runtime, for the bug report
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("%s crashed (%v) at %s", e.What, e.Value, e.Where)
}

// Do runs f; a panic inside it comes back as a *PanicError naming what.
func Do(what string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{What: what, Value: v, Where: where()}
		}
	}()
	return f()
}

// where names the frames that panicked, skipping the runtime and this package.
func where() string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var out []string
	for {
		fr, more := frames.Next()
		if !strings.HasPrefix(fr.Function, "runtime.") && !ownFrame(fr.Function) {
			out = append(out, fmt.Sprintf("%s:%d", fr.Function, fr.Line))
			if len(out) == 2 {
				break
			}
		}
		if !more {
			break
		}
	}
	return strings.Join(out, " < ")
}

func ownFrame(fn string) bool {
	const pkg = "github.com/helpwatch/helpwatch/watcher/internal/safe."
	rest, ok := strings.CutPrefix(fn, pkg)
	return ok && (rest == "where" || rest == "Do" || strings.HasPrefix(rest, "Do."))
}
