package ctlog_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher/source/ctlog"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog/ctlogtest"
)

func TestBuiltinListSelection(t *testing.T) {
	list := ctlog.Builtin()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	sel, err := list.Select(now, ctlog.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]ctlog.Selection{}
	for _, s := range sel {
		byName[s.Name] = s
	}
	if len(sel) != 20 {
		t.Fatalf("%d logs in the built-in list, want 20", len(sel))
	}
	for name, follow := range map[string]bool{
		"Argon2026h2": true, "Argon2027h1": true, // interval starts within 200 days
		"Sycamore2026h2": true, "Willow2026h2": true, // Let's Encrypt's static logs
		"Oak2026h2":     false, // retired
		"Mammoth2026h2": true,  // read-only: up to its final head
		"Nimbus2027":    true,  // starts 2027-01-01, before now + 200 days
		"HETU2027":      true,
	} {
		s, ok := byName[name]
		if !ok {
			t.Errorf("no log %s", name)
			continue
		}
		if s.Follow != follow {
			t.Errorf("%s followed %v, want %v (%s)", name, s.Follow, follow, s.Why)
		}
	}
	if s := byName["Sycamore2026h2"]; s.Kind != ctlog.KindStatic || s.Origin != "log.sycamore.ct.letsencrypt.org/2026h2" || s.Operator != "Let's Encrypt" {
		t.Errorf("Sycamore: %+v", s.Log)
	}
	if m := byName["Mammoth2026h2"]; m.Final == nil || m.Final.Size == 0 {
		t.Error("Mammoth2026h2 has no final tree head")
	}
	// Past the temporal intervals.
	later, _ := list.Select(time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), ctlog.Filter{})
	for _, s := range later {
		if s.Name == "Argon2026h2" && s.Follow {
			t.Error("a log whose interval ended is followed")
		}
	}
	// A shorter maximum validity drops the logs that start far ahead.
	short, _ := list.Select(now, ctlog.Filter{MaxValidity: 10 * 24 * time.Hour})
	for _, s := range short {
		if s.Name == "Nimbus2027" && s.Follow {
			t.Errorf("Nimbus2027 followed with 10 days of validity: %s", s.Why)
		}
	}
}

func TestFilterByName(t *testing.T) {
	list := ctlog.Builtin()
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	sel, err := list.Select(now, ctlog.Filter{Only: []string{"sycamore2026h2", "Google Argon2026h2"}, Exclude: []string{"Argon2026h2"}})
	if err != nil {
		t.Fatal(err)
	}
	var followed []string
	for _, s := range sel {
		if s.Follow {
			followed = append(followed, s.Name)
		}
	}
	if strings.Join(followed, ",") != "Sycamore2026h2" {
		t.Errorf("followed %v", followed)
	}
	_, err = list.Select(now, ctlog.Filter{Only: []string{"argn2026h2"}})
	if err == nil || !strings.Contains(err.Error(), "argn2026h2") || !strings.Contains(err.Error(), "Argon2026h2") {
		t.Errorf("an unknown name: %v", err)
	}
}

func TestListFileRoundTrip(t *testing.T) {
	a := ctlogtest.NewLog(t, ctlog.KindStatic, "Tiled")
	b := ctlogtest.NewLog(t, ctlog.KindRFC6962, "Classic")
	path := filepath.Join(t.TempDir(), "list.json")
	if err := ctlogtest.WriteList(path, a, b); err != nil {
		t.Fatal(err)
	}
	list, err := ctlog.LoadList(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Logs) != 2 {
		t.Fatalf("%d logs", len(list.Logs))
	}
	for _, l := range list.Logs {
		want := a.ListLog()
		if l.Kind == ctlog.KindRFC6962 {
			want = b.ListLog()
		}
		if l.ID != want.ID || l.URL != want.URL || l.Origin != want.Origin && l.Kind == ctlog.KindStatic || l.State != "usable" {
			t.Errorf("read %+v, want %+v", l, want)
		}
	}
	if _, err := ctlog.LoadList(filepath.Join(t.TempDir(), "missing.json"), nil); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("a missing file: %v", err)
	}
}
