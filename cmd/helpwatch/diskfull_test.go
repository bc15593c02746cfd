package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A real full disk: a 1 MiB tmpfs in a private mount namespace (unshare, no root needed where
// unprivileged user namespaces are on; nothing is mounted on the host). The first watch fits;
// the disk is then filled; the next watch must say that the disk is full and which file, and
// exit non-zero. A disk too small for the schema says the same at start.
func TestWatchOnAFullDisk(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) is not installed; skipping the full-disk check")
	}
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	var names strings.Builder
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&names, "hp-printer-help-%d.com\n", i)
	}
	list := filepath.Join(dir, "names.txt")
	os.WriteFile(list, []byte(names.String()), 0o644)
	demo, _ := filepath.Abs(demoFile(t))
	script := `mount -t tmpfs -o size=$4 tmpfs "$1" || exit 99
"$2" watch --enrich=false --site-check=false --source "$3" --db "$1/h.db" >/dev/null 2>&1 || exit 98
[ -z "$5" ] && exit 0
dd if=/dev/zero of="$1/fill" bs=4k 2>/dev/null
exec "$2" watch --enrich=false --site-check=false --source "$5" --db "$1/h.db" >/dev/null`
	run := func(size, second string) (string, int) {
		cmd := exec.Command("unshare", "-r", "-m", "sh", "-c", script, "sh", mnt, os.Args[0], demo, size, second)
		cmd.Env = append(os.Environ(), "HELPWATCH_MAIN=1")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code == 99 {
			t.Skipf("cannot mount a tmpfs in a user namespace here: %s", out)
		}
		return string(out), code
	}
	out, code := run("1m", list)
	if code != 1 || !strings.Contains(out, "disk full") || !strings.Contains(out, filepath.Join(mnt, "h.db")) || strings.Contains(out, "not a usable SQLite database") {
		t.Errorf("full while storing: exit %d\n%s", code, out)
	}
	// Too small for the schema: the first watch itself fails, so the script exits 98.
	cmd := exec.Command("unshare", "-r", "-m", "sh", "-c", `mount -t tmpfs -o size=48k tmpfs "$1" || exit 99
exec "$2" watch --enrich=false --site-check=false --source "$3" --db "$1/h.db" >/dev/null`, "sh", mnt, os.Args[0], demo)
	cmd.Env = append(os.Environ(), "HELPWATCH_MAIN=1")
	small, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 99 {
		t.Skip("cannot mount a tmpfs here")
	}
	if err == nil || !strings.Contains(string(small), "disk full") || strings.Contains(string(small), "not a usable SQLite database") {
		t.Errorf("full at start: %v\n%s", err, small)
	}
}

// A damaged database is said at start, before anything is read from the source.
func TestWatchRefusesACorruptDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "h.db")
	var names strings.Builder
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&names, "hp-printer-help-%d.com\n", i)
	}
	list := filepath.Join(dir, "names.txt")
	os.WriteFile(list, []byte(names.String()), 0o644)
	if _, stderr, code := runCLI(t, "", "watch", "--enrich=false", "--site-check=false", "--source", list, "--db", db); code != 0 {
		t.Fatal(stderr)
	}
	f, err := os.OpenFile(db, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 8*4096)
	for i := range garbage {
		garbage[i] = byte(i*7 + 3)
	}
	f.WriteAt(garbage, 4*4096)
	f.Close()
	stdout, stderr, code := runCLI(t, "", "watch", "--enrich=false", "--site-check=false", "--source", demoFile(t), "--db", db)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "database corrupt") || !strings.Contains(stderr, db) || strings.Contains(stderr, "watching") {
		t.Errorf("corrupt database: exit %d\nstdout %q\n%s", code, stdout, stderr)
	}
}
