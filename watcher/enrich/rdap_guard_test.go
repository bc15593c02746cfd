package enrich

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
)

// A registry's answer links the "registrar's RDAP" at another loopback port, and redirects
// another query there: helpwatch fetches neither, and the registry's own answer stands.
func TestRDAPLinksAndRedirectsIntoOwnNetworkRefused(t *testing.T) {
	inside := enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, enrichtest.RegistryDomain("x.test", "", "2026-11-20T09:00:00Z"))
	})
	registry := enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) {
		name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		switch name {
		case "redirected.test":
			http.Redirect(w, r, inside.URL+"/domain/"+name, http.StatusFound)
		default:
			fmt.Fprint(w, enrichtest.RegistryDomain(name, inside.URL+"/registrar/domain/"+name, "2026-11-20T09:00:00Z"))
		}
	})
	boot, err := parseBootstrap(enrichtest.BootstrapFor(registry.URL, "test"), "test")
	if err != nil {
		t.Fatal(err)
	}
	r := &RDAP{Bootstrap: boot, Timeout: time.Second, Guard: allowLocal(t, registry.Listener.Addr().String())}
	reg := r.Lookup(context.Background(), "linked.test")
	if reg.State != watcher.Found || strings.Contains(reg.Server, "+") {
		t.Errorf("registry answer with a link inside: %+v", reg)
	}
	if reg := r.Lookup(context.Background(), "redirected.test"); reg.State != watcher.Unknown || !strings.Contains(reg.Reason, "refusing to connect") {
		t.Errorf("redirect inside: %+v", reg)
	}
	if n := len(inside.Times()); n != 0 {
		t.Errorf("the local server that was not let through was reached %d times", n)
	}
	// Let through by name, the same link is followed.
	r = &RDAP{Bootstrap: boot, Timeout: time.Second, Guard: allowLocal(t, registry.Listener.Addr().String(), inside.Listener.Addr().String())}
	if reg := r.Lookup(context.Background(), "linked.test"); !strings.Contains(reg.Server, "+") || len(inside.Times()) != 1 {
		t.Errorf("allowed registrar link: %+v", reg)
	}
}
