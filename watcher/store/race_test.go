package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/helpwatch/helpwatch/watcher"
)

// openerEnv makes the test binary an opener process (see runOpener).
const openerEnv = "HELPWATCH_STORE_OPENER_DIR"

// runOpener is one of the processes of TestTwoProcessesCreateOneFile: for each round it reads
// "go N" on stdin, opens db-N in dir (a new file the other process opens at the same moment),
// and answers "ok N" or "error N: ..." on stdout.
func runOpener(dir string) int {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		round, ok := strings.CutPrefix(in.Text(), "go ")
		if !ok {
			return 2
		}
		db, err := OpenSQLite(context.Background(), filepath.Join(dir, "db-"+round+".sqlite"))
		if err == nil {
			var cases []watcher.Case
			cases, err = db.Cases(context.Background(), Query{Limit: 1})
			if err == nil && len(cases) != 0 {
				err = fmt.Errorf("%d cases in a new file", len(cases))
			}
			db.Close()
		}
		if err != nil {
			fmt.Printf("error %s: %s\n", round, strings.ReplaceAll(err.Error(), "\n", " "))
			continue
		}
		fmt.Printf("ok %s\n", round)
	}
	return 0
}

// Two processes opening one new SQLite file at once (watch creating it while findings or work
// starts) both get a migrated database: the migrations are taken one at a time under BEGIN
// IMMEDIATE and the version is read again inside. The two processes go in lockstep, a hundred
// new files.
func TestTwoProcessesCreateOneFile(t *testing.T) {
	if onPostgres() {
		t.Skip("a SQLite file")
	}
	dir := t.TempDir()
	type opener struct {
		cmd *exec.Cmd
		in  io.WriteCloser
		out *bufio.Scanner
	}
	var ps [2]opener
	for i := range ps {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), openerEnv+"="+dir)
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ps[i] = opener{cmd: cmd, in: in, out: bufio.NewScanner(out)}
		t.Cleanup(func() { in.Close(); cmd.Wait() })
	}
	const rounds = 100
	failed := 0
	for r := range rounds {
		for _, p := range ps {
			fmt.Fprintf(p.in, "go %d\n", r)
		}
		for i, p := range ps {
			if !p.out.Scan() {
				t.Fatalf("opener %d ended in round %d: %v", i, r, p.out.Err())
			}
			if line := p.out.Text(); line != "ok "+strconv.Itoa(r) {
				failed++
				t.Errorf("process %d, round %d: %s", i, r, line)
			}
		}
		if failed > 5 {
			t.Fatal("stopping after 5 failures")
		}
	}
}
