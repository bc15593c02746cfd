package source

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/testkit"
)

func gz(t *testing.T, text string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(text))
	w.Close()
	return b.Bytes()
}

// A gzip file of newly registered domains: each name once, comments and junk skipped and
// counted, no certificate.
func TestNRDFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nrd.txt.gz")
	os.WriteFile(path, gz(t, "# 2026-12-05\nhp-printer-help-desk.com\nexample.org\tfirst seen\n@@@@\n\nxn--80ak6aa92e.com\n"), 0o600)
	var got []string
	stats := &watcher.Stats{}
	err := (&NRD{Location: path, Log: testkit.Quiet()}).Run(context.Background(), func(e *watcher.Event) {
		if e.Cert.Index != -1 || e.Cert.Known() || e.Seen.IsZero() {
			t.Errorf("event %+v", e)
		}
		got = append(got, e.Names...)
	}, stats)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"hp-printer-help-desk.com", "example.org", "xn--80ak6aa92e.com"}; !slices.Equal(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
	if stats.Malformed.Load() != 1 {
		t.Errorf("malformed %d, want 1", stats.Malformed.Load())
	}
}

// A URL is fetched again on its schedule, conditionally; only the names new since the last
// list are emitted.
func TestNRDURLEmitsOnlyNewNames(t *testing.T) {
	var mu sync.Mutex
	lists := []string{"a-printer-help.com\nb.com\n", "a-printer-help.com\nb.com\nc-setup.com\n"}
	fetches, notModified := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		i := min(fetches, len(lists)-1)
		etag := `"v` + string(rune('0'+i)) + `"`
		fetches++
		if r.Header.Get("If-None-Match") == etag {
			notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", etag)
		w.Write(gz(t, lists[i]))
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	var gmu sync.Mutex
	done := make(chan error, 1)
	go func() {
		done <- (&NRD{Location: srv.URL + "/nrd.gz", Client: srv.Client(), Every: 10 * time.Millisecond, Log: testkit.Quiet()}).Run(ctx,
			func(e *watcher.Event) { gmu.Lock(); got = append(got, e.Names...); gmu.Unlock() }, &watcher.Stats{})
	}()
	testkit.WaitFor(t, "three fetches, one not modified", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return fetches >= 3 && notModified >= 1
	})
	cancel()
	<-done
	gmu.Lock()
	defer gmu.Unlock()
	if want := []string{"a-printer-help.com", "b.com", "c-setup.com"}; !slices.Equal(got, want) {
		t.Errorf("names %v, want %v", got, want)
	}
}
