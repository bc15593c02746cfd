package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrDiskFull and ErrCorrupt classify the store failures a user must act on; errors.Is finds
// them in what the store returns.
var (
	ErrDiskFull = errors.New("disk full")
	ErrCorrupt  = errors.New("database corrupt")
)

// lowSpace is the free space under which an I/O error is read as a full disk: SQLite reports
// a full disk as SQLITE_FULL on some paths and as a plain write error (SQLITE_IOERR) on others.
const lowSpace = 1 << 20

// explain turns SQLite's codes into what the user must know: which file, and that the disk is
// full or the file corrupt. Other errors pass through unchanged.
func (s *SQL) explain(err error) error {
	if err == nil {
		return nil
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return s.diskFull(err)
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
		if free, ok := freeSpace(s.path); ok && free < lowSpace {
			return s.diskFull(err)
		}
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("%w: %s is damaged (%v); restore it from a backup, or move it aside to start a new one", ErrCorrupt, s.path, err)
	}
	return err
}

func (s *SQL) diskFull(err error) error {
	free := "no space"
	if n, ok := freeSpace(s.path); ok {
		free = fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Errorf("%w: the disk holding %s has %s left (%v); free some space or give --db a path on another disk. What was already stored is safe",
		ErrDiskFull, s.path, free, err)
}

// freeSpace is the space available to us on the filesystem of path's directory.
func freeSpace(path string) (uint64, bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return 0, false
	}
	return st.Bavail * uint64(st.Bsize), true
}
