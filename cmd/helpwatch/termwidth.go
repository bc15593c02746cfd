package main

import (
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// terminalWidth is the width rows must fit: the terminal's when w is one, else $COLUMNS, else
// 100 (a pipe into a pager or a file gets rows a terminal would show as well).
func terminalWidth(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			return int(ws.Col)
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 100
}
