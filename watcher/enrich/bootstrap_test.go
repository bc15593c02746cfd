package enrich

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
)

func TestLoadBootstrapOrder(t *testing.T) {
	ctx := context.Background()
	var served atomic.Pointer[[]byte]
	iana := enrichtest.StartRDAP(t, func(w http.ResponseWriter, r *http.Request) {
		body := served.Load()
		if body == nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write(*body)
	})
	dir := t.TempDir()
	opts := BootstrapOptions{IANAURL: iana.URL + "/dns.json", CacheDir: dir,
		HTTP: allowLocal(t, iana.Listener.Addr().String()).HTTPClient(time.Second, 0)}
	cachePath := filepath.Join(dir, "rdap-dns.json")

	// Nothing cached and IANA down: the built-in list, which knows .com.
	b, err := LoadBootstrap(ctx, opts)
	if err != nil || !strings.HasPrefix(b.Source, "built-in") || len(b.Servers("hp-help.com")) == 0 {
		t.Fatalf("built-in fallback: %v %+v", err, b)
	}
	// IANA answers: its file is used and cached.
	file := enrichtest.BootstrapFor("https://rdap.example.test", "zz")
	served.Store(&file)
	b, err = LoadBootstrap(ctx, opts)
	if err != nil || b.Source != opts.IANAURL || len(b.Servers("x.zz")) != 1 {
		t.Fatalf("download: %v %+v", err, b)
	}
	if _, err := os.Stat(cachePath); err != nil {
		t.Fatalf("not cached: %v", err)
	}
	// Fresh cache: IANA is not asked.
	before := len(iana.Times())
	if b, _ = LoadBootstrap(ctx, opts); b.Source != cachePath || len(iana.Times()) != before {
		t.Errorf("fresh cache not used: %s", b.Source)
	}
	// Stale cache and IANA down: the stale copy, saying so.
	old := time.Now().Add(-48 * time.Hour)
	os.Chtimes(cachePath, old, old)
	served.Store(nil)
	if b, _ = LoadBootstrap(ctx, opts); !strings.Contains(b.Source, "stale") || len(b.Servers("x.zz")) != 1 {
		t.Errorf("stale cache: %s", b.Source)
	}
	// The download goes through the address guard: without the server let through, the
	// loopback "IANA" is refused and the built-in list is used, saying why.
	served.Store(&file)
	guarded := opts
	guarded.HTTP, guarded.CacheDir = nil, t.TempDir()
	if b, _ = LoadBootstrap(ctx, guarded); !strings.HasPrefix(b.Source, "built-in") || !strings.Contains(b.Source, "--allow-host") {
		t.Errorf("guarded download: %s", b.Source)
	}
	// A configured location is used as is, and its failure is an error naming it.
	local := filepath.Join(dir, "mine.json")
	os.WriteFile(local, enrichtest.BootstrapFor("https://rdap.mine.test", "mine"), 0o644)
	if b, err = LoadBootstrap(ctx, BootstrapOptions{Location: local}); err != nil || len(b.Servers("a.mine")) != 1 {
		t.Errorf("configured file: %v", err)
	}
	if _, err = LoadBootstrap(ctx, BootstrapOptions{Location: filepath.Join(dir, "missing.json")}); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing configured file: %v", err)
	}
	os.WriteFile(local, []byte("{not json"), 0o644)
	if _, err = LoadBootstrap(ctx, BootstrapOptions{Location: local}); err == nil || !strings.Contains(err.Error(), "mine.json") {
		t.Errorf("broken configured file: %v", err)
	}
}
