package safe

import (
	"errors"
	"strings"
	"testing"
)

func TestDoTurnsPanicsIntoErrors(t *testing.T) {
	err := Do("the parser", func() error {
		var s []int
		_ = s[3]
		return nil
	})
	var pe *PanicError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "the parser crashed") || !strings.Contains(err.Error(), "index out of range") ||
		!strings.Contains(pe.Where, "TestDoTurnsPanicsIntoErrors") {
		t.Errorf("panic: %v (where %q)", err, pe.Where)
	}
	want := errors.New("plain")
	if err := Do("x", func() error { return want }); err != want {
		t.Errorf("plain error: %v", err)
	}
}
