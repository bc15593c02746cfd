package site

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"

	"github.com/helpwatch/helpwatch/watcher/netguard"
)

// onlyLocal127001 lets tests reach the httptest servers on 127.0.0.1 and nothing else, so the
// guard still refuses every other address (127.0.0.2 included).
var onlyLocal127001 = func() *netguard.Guard {
	g := &netguard.Guard{}
	if err := g.AllowHost("127.0.0.1"); err != nil {
		panic(err)
	}
	return g
}()

func testServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<html><head><title>HP Printer Setup</title></head><body>Welcome</body></html>`)
	})
	mux.HandleFunc("/hop/", func(w http.ResponseWriter, r *http.Request) {
		var n int
		fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/hop/"), "%d", &n)
		if n == 0 {
			http.Redirect(w, r, "/page", http.StatusFound)
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/to-private", func(w http.ResponseWriter, r *http.Request) {
		_, port, _ := strings.Cut(r.Host, ":")
		http.Redirect(w, r, "http://127.0.0.2:"+port+"/page", http.StatusFound)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html><body>first part "))
		w.(http.Flusher).Flush()
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("a"), 5<<20))
	})
	mux.HandleFunc("/bomb", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "text/html")
		gz := gzip.NewWriter(w)
		zeros := make([]byte, 1<<20)
		for i := 0; i < 1024; i++ { // 1 GiB once inflated
			if _, err := gz.Write(zeros); err != nil {
				return
			}
		}
		gz.Close()
	})
	mux.HandleFunc("/brotli", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "br")
		bw := brotli.NewWriter(w)
		bw.Write([]byte("<html><body>compressed HP support page</body></html>"))
		bw.Close()
	})
	mux.HandleFunc("/latin1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=windows-1252")
		w.Write([]byte("<html><body>Caf\xe9 \x93support\x94</body></html>"))
	})
	mux.HandleFunc("/meta-charset", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html><head><meta charset=\"iso-8859-1\"></head><body>Se\xf1or</body></html>"))
	})
	mux.HandleFunc("/hostile", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<html><head><title><script>alert(1)</script>HP "setup" &amp; more</title></head><body><img src=x onerror=alert(2)>x</body></html>`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestFetchBounds(t *testing.T) {
	srv := testServer(t)
	f := &Fetcher{Guard: onlyLocal127001, Timeout: time.Second}
	ctx := context.Background()

	got := f.Fetch(ctx, srv.URL+"/hop/3")
	if got.Err != nil || got.FinalURL != srv.URL+"/page" || len(got.Redirects) != 4 || !strings.Contains(string(got.Body), "HP Printer Setup") {
		t.Errorf("4 redirects: %+v %v", got, got.Err)
	}
	if got := f.Fetch(ctx, srv.URL+"/hop/9"); got.Err == nil || !strings.Contains(got.Err.Error(), "redirects") {
		t.Errorf("10 redirects: %v", got.Err)
	}
	if got := f.Fetch(ctx, srv.URL+"/to-private"); !errors.Is(got.Err, ErrBlockedAddress) {
		t.Errorf("redirect to another local address: %v", got.Err)
	}
	slow := f.Fetch(ctx, srv.URL+"/slow")
	if slow.Err == nil || !strings.Contains(string(slow.Body), "first part") {
		t.Errorf("slow body: err %v, kept %q", slow.Err, slow.Body)
	}
	big := f.Fetch(ctx, srv.URL+"/big")
	if !big.Truncated || len(big.Body) != 2<<20 || big.Err != nil {
		t.Errorf("5 MiB body: truncated %v, %d bytes, %v", big.Truncated, len(big.Body), big.Err)
	}
	bomb := f.Fetch(ctx, srv.URL+"/bomb")
	if !bomb.Truncated || len(bomb.Body) != 2<<20 {
		t.Errorf("gzip bomb: truncated %v, %d bytes, %v", bomb.Truncated, len(bomb.Body), bomb.Err)
	}
	if got := f.Fetch(ctx, srv.URL+"/brotli"); !strings.Contains(string(got.Body), "compressed HP support page") {
		t.Errorf("brotli body %q %v", got.Body, got.Err)
	}
	if got := f.Fetch(ctx, srv.URL+"/latin1"); !strings.Contains(string(got.Body), "Café “support”") {
		t.Errorf("windows-1252 body decoded as %q", got.Body)
	}
	if got := f.Fetch(ctx, srv.URL+"/meta-charset"); !strings.Contains(string(got.Body), "Señor") {
		t.Errorf("meta charset body decoded as %q", got.Body)
	}
	hostile := f.Fetch(ctx, srv.URL+"/hostile")
	p := ExtractHTML(hostile.Body, nil)
	if p.Title != `<script>alert(1)</script>HP "setup" & more` {
		t.Errorf("hostile title read as %q", p.Title)
	}
	// A bare name tries https first, then http (the test server speaks http only).
	name := strings.TrimPrefix(srv.URL, "http://")
	if got := f.Fetch(ctx, name); got.Status != http.StatusNotFound || !strings.HasPrefix(got.FinalURL, "http://") {
		t.Errorf("bare name: %+v %v", got, got.Err)
	}
}

// The default guard refuses the loopback test server at dial time.
func TestGuardRefusesPrivateRanges(t *testing.T) {
	srv := testServer(t)
	got := (&Fetcher{Timeout: time.Second}).Fetch(context.Background(), srv.URL+"/page")
	if !errors.Is(got.Err, ErrBlockedAddress) {
		t.Errorf("a fetch of 127.0.0.1 with the default guard: %v", got.Err)
	}
}
