package site

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/helpwatch/helpwatch/watcher/netguard"
)

// Renderer builds script-made pages (React and Next.js kits ship an empty shell) in headless
// Chromium (driven by chromedp) and returns the resulting DOM.
//
// The page is an attacker's, so Chromium runs with its sandbox on (never --no-sandbox): page
// code lives in sandboxed renderer processes (Linux namespaces and seccomp). Chromium refuses
// its sandbox to root, so a helpwatch running as root starts Chromium as an unprivileged user
// (User, default "nobody") rather than turning the sandbox off. Around that: a time budget, a
// cap on the output, a small JavaScript heap, a throw-away profile owned by that user, images
// and downloads off, and name resolution pinned to the address the guarded fetch already
// accepted, so neither the page nor its scripts reach any other host (no detour to a private
// address, no third-party downloads).
type Renderer struct {
	Browser string        // path of chromium; empty looks it up
	Timeout time.Duration // default 15 s
	MaxDOM  int64         // default 2 MiB
	// User runs Chromium when helpwatch runs as root (default "nobody"); ignored otherwise.
	User string

	// inspect, when set (tests), is called with the browser's process id once the page loaded.
	inspect func(pid int)
}

// ErrNoSandbox is returned when Chromium could not start with its sandbox.
var ErrNoSandbox = errors.New("Chromium could not start with its sandbox (it needs unprivileged user namespaces, or run helpwatch as a user Chromium accepts); pages are not rendered without one")

// runAs returns the credential Chromium is started with: nil when helpwatch is not root (it
// then runs as the current user, sandboxed), else the unprivileged User.
func (r *Renderer) runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	name := r.User
	if name == "" {
		name = "nobody"
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("render: Chromium must not run as root and user %q is unknown: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil || uid == 0 {
		return nil, fmt.Errorf("render: user %q cannot run Chromium (uid %s)", name, u.Uid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// ErrNoBrowser is returned when no Chromium is installed.
var ErrNoBrowser = errors.New("no chromium found (install Debian's chromium, or leave --render off)")

// Available reports whether a browser can be started.
func (r *Renderer) Available() bool { _, err := r.browser(); return err == nil }

func (r *Renderer) browser() (string, error) {
	if r.Browser != "" {
		return r.Browser, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoBrowser
}

// Render loads target in headless Chromium through chromedp, with its host pinned to addr (the
// IP the fetch connected to; ignored for an IP-literal URL) and the hosts of pins (host to an
// address the guard accepted: where the page's own scripts come from) pinned to theirs; no
// other name resolves. It returns the DOM after the page's scripts ran. Downloads are denied,
// images are not loaded, and the whole render is bounded by the timeout.
func (r *Renderer) Render(ctx context.Context, target, addr string, pins map[string]string) ([]byte, error) {
	bin, err := r.browser()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("render: not an http(s) URL: %q", target)
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	maxDOM := r.MaxDOM
	if maxDOM <= 0 {
		maxDOM = 2 << 20
	}
	// Only the page's own host resolves, and only to the address already checked; an IP
	// literal must be mapped to itself (Chromium applies the rules to literals too).
	host := u.Hostname()
	pinned := addr
	if net.ParseIP(host) != nil {
		pinned = host
	}
	if pinned == "" {
		return nil, fmt.Errorf("render: no checked address for %s", host)
	}
	cred, err := r.runAs()
	if err != nil {
		return nil, err
	}
	profile, err := os.MkdirTemp("", "helpwatch-render-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(profile)
	if cred != nil {
		if err := os.Chown(profile, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("render: profile for the Chromium user: %w", err)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.UserDataDir(profile),
		// chromedp adds --no-sandbox on its own when we are root; this keeps the sandbox on.
		chromedp.Flag("no-sandbox", false),
		// Chromium's own files (caches, crash reports) go to the throw-away profile.
		chromedp.Env("HOME="+profile, "XDG_CONFIG_HOME="+profile, "XDG_CACHE_HOME="+profile),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
		}),
		chromedp.Flag("host-resolver-rules", resolverRules(host, pinned, pins)),
		chromedp.Flag("blink-settings", "imagesEnabled=false"),
		chromedp.Flag("js-flags", "--max-old-space-size=128"),
		chromedp.Flag("disable-background-networking", true),
	)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()
	err = chromedp.Do(tabCtx,
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior,
				browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorDeny})
			return err
		}),
		chromedp.Navigate(u.String()),
		// Kits build the page in their first moments; give the scripts a short while.
		chromedp.Sleep(1500*time.Millisecond),
	)
	var dom string
	if err == nil {
		if r.inspect != nil {
			if b := chromedp.FromContext(tabCtx).Browser; b != nil && b.Process() != nil {
				r.inspect(b.Process().Pid)
			}
		}
		dom, err = chromedp.Run(tabCtx, chromedp.OuterHTML(chromedp.CSS("html")))
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("render: %s did not finish within %s", target, timeout)
		}
		if strings.Contains(err.Error(), "sandbox") || strings.Contains(err.Error(), "zygote") {
			return nil, fmt.Errorf("render: %w: %v", ErrNoSandbox, err)
		}
		return nil, fmt.Errorf("render: %w", err)
	}
	if int64(len(dom)) > maxDOM {
		dom = dom[:maxDOM]
	}
	return []byte(dom), nil
}

// resolverRules maps the page's host and the pinned script hosts to their checked addresses
// and every other name to nothing. Names and addresses come from a URL and the guard, but a
// rule list is a syntax: anything that is not a plain host name or address is left out.
func resolverRules(host, addr string, pins map[string]string) string {
	rules := []string{fmt.Sprintf("MAP %s %s", host, addr)}
	names := make([]string, 0, len(pins))
	for h := range pins {
		names = append(names, h)
	}
	sort.Strings(names)
	for _, h := range names {
		if netguard.PlainHost(h) && net.ParseIP(pins[h]) != nil {
			rules = append(rules, fmt.Sprintf("MAP %s %s", h, pins[h]))
		}
	}
	return strings.Join(append(rules, "MAP * ~NOTFOUND"), ", ")
}

// NeedsRender guesses that a page is a script shell: little text to read, scripts to run.
func NeedsRender(p *Page) bool {
	return len(bytes.Fields([]byte(p.Text))) < 40 && len(p.ScriptHosts) > 0 || len(bytes.Fields([]byte(p.Text))) < 5
}
