// Package capturetest serves what captures are tested against: a cloaking kit site and a
// regional registry's RDAP for the loopback block, both on 127.0.0.1.
package capturetest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
)

// CloakingSite serves the kit page to a phone coming from a search engine and a blank page to
// everyone else, as cloaking kits do.
func CloakingSite(t testing.TB, kit []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Server", "kit/1.0")
		if strings.Contains(r.UserAgent(), "Mobile") && strings.Contains(r.Referer(), "google.") {
			w.Write(kit)
			return
		}
		w.Write([]byte(`<html><head><title></title></head><body></body></html>`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// HostingAbuse is the abuse desk HostingRDAP names for 127.0.0.0/8.
const HostingAbuse = "abuse@hosting.example"

// HostingRDAP is a regional registry's RDAP for 127.0.0.0/8; it returns the bootstrap file
// naming it and the server's host:port.
func HostingRDAP(t testing.TB) (bootstrap, hostport string) {
	rdap := enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ip/127.0.0.1" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/rdap+json")
		w.Write([]byte(enrichtest.IPNetwork("NET-127-0-0-0-1", "127.0.0.0", "127.255.255.255", "LOOPBACK-HOSTING", "de", "Loopback Hosting GmbH", HostingAbuse)))
	})
	path := filepath.Join(t.TempDir(), "ipv4.json")
	if err := os.WriteFile(path, enrichtest.IPBootstrapFor(rdap.URL, "127.0.0.0/8"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, rdap.Listener.Addr().String()
}
