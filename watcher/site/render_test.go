package site

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/netguard"
	"github.com/helpwatch/helpwatch/watcher/testkit"
)

func needBrowser(t *testing.T) { testkit.NeedBrowser(t) }

// A React-style kit: the HTML is an empty shell and the scam is built by script. Raw HTML sees
// nothing; the rendered page is the clone. The browser runs sandboxed: no --no-sandbox, not
// as root, and its renderer processes under a seccomp filter.
func TestRenderScriptBuiltKit(t *testing.T) {
	needBrowser(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!DOCTYPE html><html><head><title>Loading</title></head><body><div id="root"></div><script>
document.getElementById('root').innerHTML = '<h1>HP Smart printer setup</h1><p>Downloading driver... Connecting to server...</p>' +
  '<p>Installation failed. Error code 0x61. Call toll free <a href="tel:+18882157421">+1 (888) 215-7421</a></p>';
</script></body></html>`))
	}))
	defer srv.Close()
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Guard: onlyLocal127001, Timeout: 5 * time.Second}
	plain, _ := CheckLive(context.Background(), rs, nil, f, nil, srv.URL+"/")
	if plain.Verdict == rules.SiteClone || plain.Rendered {
		t.Fatalf("the raw shell already reads as %s", plain.Verdict)
	}
	var sandbox []string
	r := &Renderer{Timeout: 45 * time.Second, inspect: func(pid int) { sandbox = inspectSandbox(t, pid) }}
	built, _ := CheckLive(context.Background(), rs, nil, f, r, srv.URL+"/")
	if !built.Rendered || built.Verdict != rules.SiteClone || len(built.Phones) != 1 {
		t.Errorf("rendered: %s rendered=%v phones=%v error=%q", built.Verdict, built.Rendered, built.Phones, built.Error)
	}
	if !strings.Contains(strings.Join(built.Indicate, ","), "installation failed") {
		t.Errorf("indicators %v", built.Indicate)
	}
	for _, problem := range sandbox {
		t.Error(problem)
	}
}

// inspectSandbox looks at the running browser: its command line, its user, and its renderer
// processes' seccomp mode. It returns what is wrong.
func inspectSandbox(t *testing.T, pid int) []string {
	var problems []string
	cmdline, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "cmdline"))
	if err != nil {
		return []string{"cannot read the browser's command line: " + err.Error()}
	}
	args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	profile := ""
	for _, a := range args {
		if a == "--no-sandbox" {
			problems = append(problems, "Chromium runs with --no-sandbox")
		}
		if v, ok := strings.CutPrefix(a, "--user-data-dir="); ok {
			profile = v
		}
	}
	if uid := statusField(pid, "Uid"); uid == "" || strings.Fields(uid)[0] == "0" {
		problems = append(problems, "Chromium runs as root (Uid "+uid+")")
	}
	// Renderers: the browser's descendants with --type=renderer (the headless shell does not
	// repeat the profile on their command lines); each must be under a seccomp filter (mode 2),
	// which Chromium installs only with its sandbox on.
	renderers := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		c, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(c, []byte("--type=renderer")) || !descends(atoi(strings.Split(p, "/")[2]), pid) {
			continue
		}
		renderers++
		rpid := strings.Split(p, "/")[2]
		if mode := statusField(atoi(rpid), "Seccomp"); mode != "2" {
			problems = append(problems, "renderer "+rpid+" has seccomp mode "+mode+", want 2 (sandboxed)")
		}
	}
	if renderers == 0 {
		problems = append(problems, "no renderer process found below the browser "+itoa(pid)+" (profile "+profile+")")
	}
	return problems
}

// descends reports whether process pid runs below ancestor.
func descends(pid, ancestor int) bool {
	for n := 0; n < 32 && pid > 1; n++ {
		ppid, err := strconv.Atoi(statusField(pid, "PPid"))
		if err != nil {
			return false
		}
		if ppid == ancestor {
			return true
		}
		pid = ppid
	}
	return false
}

func statusField(pid int, field string) string {
	data, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "status"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// serveOn starts an httptest server on a given loopback address (127.0.0.0/8 is all loopback).
func serveOn(t *testing.T, ip string, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// A kit built by a script from its asset host renders as a browser shows it: the script host
// the page names is reached (through the guard), a host the guard refuses is not.
func TestRenderLoadsTheSitesOwnScripts(t *testing.T) {
	needBrowser(t)
	var refusedAsked atomic.Int64
	assets := serveOn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript")
		w.Write([]byte(`document.getElementById('root').innerHTML = '<h1>HP Smart printer setup</h1><p>Downloading driver... Connecting to server...</p>' +
  '<p>Installation failed. Error code 0x61. Call toll free <a href="tel:+18882157421">+1 (888) 215-7421</a></p>';`))
	}))
	refused := serveOn(t, "127.0.0.3", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refusedAsked.Add(1)
		w.Header().Set("Content-Type", "application/javascript")
		w.Write([]byte(`document.body.insertAdjacentHTML('beforeend', '<p>REFUSED-HOST-RAN</p>');`))
	}))
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!DOCTYPE html><html><head><title>Loading</title></head><body><div id="root"></div>
<script src="%s/kit.js"></script><script src="%s/other.js"></script></body></html>`, assets.URL, refused.URL)
	}))
	defer page.Close()
	g := &netguard.Guard{}
	g.AllowHost("127.0.0.1")
	g.AllowHost("127.0.0.2")
	f := &Fetcher{Guard: g, Timeout: 5 * time.Second}
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	built, _ := CheckLive(context.Background(), rs, nil, f, &Renderer{Timeout: 45 * time.Second}, page.URL+"/")
	if !built.Rendered || built.Verdict != rules.SiteClone {
		t.Fatalf("rendered=%v verdict %s error %q", built.Rendered, built.Verdict, built.Error)
	}
	if strings.Contains(built.Page.Text, "REFUSED-HOST-RAN") || refusedAsked.Load() > 0 {
		t.Errorf("the renderer reached a host the guard refuses (%d requests)", refusedAsked.Load())
	}
}

// Captures share one sandboxed browser, and each capture's pages still reach only their own
// host: a script or image on another host (here another loopback address, which the shared
// browser's resolver would let through without the capture's proxy) is never asked for, in
// the first capture or the next. Close stops the browser.
func TestCapturesShareOneSandboxedBrowserAndStayPinned(t *testing.T) {
	needBrowser(t)
	var otherAsked atomic.Int64
	other := serveOn(t, "127.0.0.3", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherAsked.Add(1)
		w.Write([]byte(`document.body.insertAdjacentHTML('beforeend', '<p>OTHER-HOST-RAN</p>');`))
	}))
	var referers []string
	var mu sync.Mutex
	page := serveOn(t, "127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		referers = append(referers, r.Referer())
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!DOCTYPE html><html><body><h1>HP printer setup</h1><p>Call +1 (888) 215-7421</p>
<img src="%s/pixel.png"><script src="%s/other.js"></script>
<script>fetch('http://127.0.0.1:9/').catch(function(){});</script></body></html>`, other.URL, other.URL)
	}))
	target := "http://kit.test:" + page.Listener.Addr().(*net.TCPAddr).AddrPort().String()[len("127.0.0.2:"):] + "/"
	var pids []int
	var sandbox []string
	r := &Renderer{Timeout: 45 * time.Second,
		Rewrite: func(hostport string) string {
			if strings.HasPrefix(hostport, "kit.test:") {
				return page.Listener.Addr().String()
			}
			return ""
		},
		inspect: func(pid int) {
			pids = append(pids, pid)
			if sandbox == nil {
				sandbox = append(inspectSandbox(t, pid), "")
			}
		}}
	defer r.Close()
	views := []View{{}, {Mobile: true, Referer: "https://www.google.com/"}}
	for round := 0; round < 2; round++ {
		visits, err := r.Capture(context.Background(), target, "127.0.0.2", nil, views)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range visits {
			if v.Err != nil || !bytes.Contains(v.DOM, []byte("HP printer setup")) || len(v.Screenshot) == 0 {
				t.Fatalf("round %d view %d: err %v, %d bytes of DOM, %d of screenshot", round, i, v.Err, len(v.DOM), len(v.Screenshot))
			}
			if bytes.Contains(v.DOM, []byte("OTHER-HOST-RAN")) {
				t.Errorf("round %d view %d: a script from another host ran", round, i)
			}
		}
	}
	for _, problem := range sandbox {
		if problem != "" {
			t.Error(problem)
		}
	}
	if n := otherAsked.Load(); n != 0 {
		t.Errorf("the other host was asked %d times", n)
	}
	if len(pids) != 4 || pids[0] != pids[3] {
		t.Errorf("browser processes per view %v, want one shared by both captures", pids)
	}
	mu.Lock()
	if len(referers) != 4 || referers[1] != "https://www.google.com/" || referers[0] != "" {
		t.Errorf("referers seen by the site %q", referers)
	}
	mu.Unlock()
	r.Close()
	testkit.WaitFor(t, "the shared browser to stop", 10*time.Second, func() bool {
		return syscall.Kill(pids[0], 0) != nil
	})
}
