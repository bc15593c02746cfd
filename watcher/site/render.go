package site

import (
	"bytes"
	"cmp"
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
	"sync"
	"syscall"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	cdptarget "github.com/chromedp/cdproto/target"
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

	// Rewrite, when set (tests), maps the page's host:port to the address:port the browser
	// connects to instead, as Fetcher.Rewrite does for the fetch.
	Rewrite func(hostport string) string

	// IdleAfter stops the browser that captures share when no capture used it for this long
	// (default 2 minutes); MaxUses restarts it after that many captures (default 200), so
	// that nothing a page leaves behind in the browser grows for ever.
	IdleAfter time.Duration
	MaxUses   int

	// inspect, when set (tests), is called with the browser's process id once the page loaded.
	inspect func(pid int)

	// The browser captures share: started by the first capture, kept while captures come.
	mu     sync.Mutex
	shared *browserRun
	uses   int         // captures the shared browser has served
	busy   int         // captures using it now
	idle   *time.Timer // stops it once idle
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
	// The headless shell (Debian's chromium-headless-shell) first: the full browser's headless
	// mode costs about five times its CPU and twice its memory for the same capture.
	for _, name := range []string{"chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"} {
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
	b, err := r.start(ctx, target, addr, pins, false)
	if err != nil {
		return nil, err
	}
	defer b.close()
	dom, _, err := b.visit(b.ctx, View{}, false)
	return dom, err
}

// View is how a capture looks at a page: as which browser, from where, on what screen.
type View struct {
	UserAgent string
	Referer   string
	Mobile    bool
	Width     int // CSS pixels; default 1280 (desktop) or 390 (mobile)
	Height    int // the viewport; default 800 (desktop) or 844 (mobile)
}

// Visit is what one view of a capture got.
type Visit struct {
	DOM        []byte // after the scripts ran, bounded by MaxDOM
	Screenshot []byte // PNG of the page from its top, at most MaxShotHeight pixels tall
	Err        error
}

// MaxShotHeight bounds a screenshot's height: a page padded to a million pixels must not
// become a gigabyte image; what a desk needs is the top of the page.
const MaxShotHeight = 4000

// maxShotWidth bounds a screenshot's width the same way.
const maxShotWidth = 1600

// Capture loads target once per view, each in a browser context of its own (no cookie or
// cache of one view reaches the next), and returns the DOM and a screenshot of each. Images are
// loaded here (from the page's own host only), because the screenshot is evidence of what a
// visitor sees.
//
// Captures share one long-lived sandboxed browser (starting Chromium is most of a capture's
// cost). A browser-wide resolver rule cannot pin one capture's host, so each browser context
// is given a proxy of its own (a loopback pinProxy that connects the page's host and pins to
// their checked addresses and refuses every other name), with no bypass, loopback included.
func (r *Renderer) Capture(ctx context.Context, target, addr string, pins map[string]string, views []View) ([]Visit, error) {
	u, pinned, err := r.pin(target, addr)
	if err != nil {
		return nil, err
	}
	timeout := r.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	proxy, err := startPinProxy(r.router(u, pinned, pins))
	if err != nil {
		return nil, fmt.Errorf("render: capture proxy: %w", err)
	}
	defer proxy.Close()
	shared, release, err := r.acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	run := &browserRun{r: r, ctx: ctx, target: u, timeout: timeout}
	out := make([]Visit, len(views))
	for i, v := range views {
		tab, cancelTab := chromedp.NewContext(shared.ctx, chromedp.WithNewBrowserContext(func(p *cdptarget.CreateBrowserContextParams) {
			p.ProxyServer = proxy.URL()
			// "<-loopback>" takes loopback off the implicit bypass list: every request goes
			// through the proxy.
			p.ProxyBypassList = "<-loopback>"
		}))
		unlink := context.AfterFunc(ctx, cancelTab)
		out[i].DOM, out[i].Screenshot, out[i].Err = run.visit(tab, v, true)
		unlink()
		cancelTab()
		if ctx.Err() != nil || shared.ctx.Err() != nil {
			for j := i + 1; j < len(views); j++ {
				out[j].Err = run.timeoutErr()
			}
			break
		}
	}
	return out, nil
}

// router maps what a capture's page may connect to: its host and the pinned hosts, on any port,
// to their checked addresses (through Rewrite in tests).
func (r *Renderer) router(u *url.URL, pinned string, pins map[string]string) func(string) (string, bool) {
	host := strings.ToLower(u.Hostname())
	return func(hostport string) (string, bool) {
		h, port, err := net.SplitHostPort(hostport)
		if err != nil {
			return "", false
		}
		h = strings.ToLower(strings.Trim(h, "[]"))
		var ip string
		switch {
		case h == host:
			ip = pinned
		case pins[h] != "" && netguard.PlainHost(h) && net.ParseIP(pins[h]) != nil:
			ip = pins[h]
		default:
			return "", false
		}
		if r.Rewrite != nil {
			if to := r.Rewrite(net.JoinHostPort(h, port)); to != "" {
				return to, true
			}
		}
		return net.JoinHostPort(ip, port), true
	}
}

// acquire returns the shared browser, started when there is none (or it died, or served
// MaxUses captures), and the function that hands it back.
func (r *Renderer) acquire(ctx context.Context) (*browserRun, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	maxUses := cmp.Or(r.MaxUses, 200)
	if b := r.shared; b != nil && (b.ctx.Err() != nil || r.uses >= maxUses && r.busy == 0) {
		b.close()
		r.shared = nil
	}
	if r.shared == nil {
		b, err := r.launch(ctx, "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", true, true)
		if err != nil {
			return nil, nil, err
		}
		r.shared, r.uses = b, 0
	}
	if r.idle != nil {
		r.idle.Stop()
		r.idle = nil
	}
	r.busy++
	r.uses++
	b := r.shared
	return b, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.busy--
		if r.busy == 0 && r.shared == b {
			r.idle = time.AfterFunc(cmp.Or(r.IdleAfter, 2*time.Minute), func() {
				r.mu.Lock()
				defer r.mu.Unlock()
				if r.busy == 0 && r.shared == b {
					b.close()
					r.shared = nil
				}
			})
		}
	}, nil
}

// Close stops the browser captures share (a capture after Close starts another).
func (r *Renderer) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.idle != nil {
		r.idle.Stop()
		r.idle = nil
	}
	if r.shared != nil {
		r.shared.close()
		r.shared = nil
	}
}

func (r *Renderer) timeout() time.Duration {
	if r.Timeout <= 0 {
		return 15 * time.Second
	}
	return r.Timeout
}

// browserRun is one started browser: its first tab's context and what stops it.
type browserRun struct {
	r       *Renderer
	ctx     context.Context
	target  *url.URL
	timeout time.Duration
	stop    []func()
}

func (b *browserRun) close() {
	for i := len(b.stop) - 1; i >= 0; i-- {
		b.stop[i]()
	}
}

func (b *browserRun) timeoutErr() error {
	if b.target == nil {
		return fmt.Errorf("render: the browser did not start within %s", b.timeout)
	}
	return fmt.Errorf("render: %s did not finish within %s", b.target, b.timeout)
}

// pin checks target and returns it parsed with the address its host is pinned to: addr (the
// address the guarded fetch connected to), the literal itself for an IP-literal URL, or what
// Rewrite maps it to in tests.
func (r *Renderer) pin(target, addr string) (*url.URL, string, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, "", fmt.Errorf("render: not an http(s) URL: %q", target)
	}
	host := u.Hostname()
	pinned := addr
	if net.ParseIP(host) != nil {
		pinned = host
	}
	if pinned == "" {
		return nil, "", fmt.Errorf("render: no checked address for %s", host)
	}
	return u, pinned, nil
}

// start launches a sandboxed browser of its own for one render of target (see Renderer),
// bounded by the renderer's timeout; nothing is loaded yet.
func (r *Renderer) start(ctx context.Context, target, addr string, pins map[string]string, images bool) (*browserRun, error) {
	u, pinned, err := r.pin(target, addr)
	if err != nil {
		return nil, err
	}
	// Only the page's own host resolves, and only to the address already checked; an IP
	// literal must be mapped to itself (Chromium applies the rules to literals too).
	host := u.Hostname()
	if r.Rewrite != nil {
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		if to := r.Rewrite(net.JoinHostPort(host, port)); to != "" {
			pinned = to
		}
	}
	timeout := r.timeout()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	b, err := r.launch(ctx, resolverRules(host, pinned, pins), images, false)
	if err != nil {
		cancel()
		return nil, err
	}
	b.target, b.timeout = u, timeout
	b.stop = append(b.stop, cancel)
	return b, nil
}

// launch starts the sandboxed browser with the given resolver rules. A browser of one render
// lives as long as ctx; a shared one (lasting) outlives the ctx it was started for, which
// bounds only its start.
func (r *Renderer) launch(ctx context.Context, resolver string, images, lasting bool) (*browserRun, error) {
	bin, err := r.browser()
	if err != nil {
		return nil, err
	}
	cred, err := r.runAs()
	if err != nil {
		return nil, err
	}
	profile, err := os.MkdirTemp("", "helpwatch-render-")
	if err != nil {
		return nil, err
	}
	b := &browserRun{r: r, timeout: r.timeout(), stop: []func(){func() { os.RemoveAll(profile) }}}
	if cred != nil {
		if err := os.Chown(profile, int(cred.Uid), int(cred.Gid)); err != nil {
			b.close()
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
		chromedp.Flag("host-resolver-rules", resolver),
		chromedp.Flag("blink-settings", fmt.Sprintf("imagesEnabled=%t", images)),
		chromedp.Flag("js-flags", "--max-old-space-size=128"),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("hide-scrollbars", true),
		// WebRTC's UDP would not go through a context's proxy.
		chromedp.Flag("force-webrtc-ip-handling-policy", "disable_non_proxied_udp"),
	)
	life := ctx
	if lasting {
		life = context.WithoutCancel(ctx)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(life, opts...)
	b.stop = append(b.stop, cancelAlloc)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	b.stop = append(b.stop, cancelTab)
	b.ctx = tabCtx
	if lasting {
		// The start is bounded by ctx even though the browser outlives it.
		unlink := context.AfterFunc(ctx, cancelAlloc)
		defer unlink()
	}
	// The browser starts with its first action: start it here, so that a browser that cannot
	// start (no sandbox) is an error of the run, not of its first view.
	if err := chromedp.Do(tabCtx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior,
			browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorDeny})
		return err
	})); err != nil {
		b.close()
		return nil, b.explain(err, ctx)
	}
	if lasting {
		// A shared browser's first tab is never used: close it, and its renderer with it.
		first := chromedp.FromContext(tabCtx).Target.TargetID
		_, _ = chromedp.CallBrowser(tabCtx, cdptarget.CloseTarget, cdptarget.CloseTargetParams{TargetID: first})
	}
	return b, nil
}

func (b *browserRun) explain(err error, ctx context.Context) error {
	if ctx.Err() != nil {
		return b.timeoutErr()
	}
	if strings.Contains(err.Error(), "sandbox") || strings.Contains(err.Error(), "zygote") {
		return fmt.Errorf("render: %w: %v", ErrNoSandbox, err)
	}
	return fmt.Errorf("render: %w", err)
}

// visit loads the target in tab as view v and returns its DOM and, with shot, a screenshot.
func (b *browserRun) visit(tab context.Context, v View, shot bool) ([]byte, []byte, error) {
	maxDOM := b.r.MaxDOM
	if maxDOM <= 0 {
		maxDOM = 2 << 20
	}
	width, height := cmp.Or(v.Width, 1280), cmp.Or(v.Height, 800)
	if v.Mobile {
		width, height = cmp.Or(v.Width, 390), cmp.Or(v.Height, 844)
	}
	call := func(f func(ctx context.Context, t *chromedp.Target) error) chromedp.Action[chromedp.Void] {
		return chromedp.Func(f)
	}
	steps := []chromedp.Action[chromedp.Void]{
		call(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior,
				browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorDeny})
			return err
		}),
	}
	if v.UserAgent != "" {
		steps = append(steps, call(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: v.UserAgent})
			return err
		}))
	}
	if shot || v.Mobile {
		steps = append(steps, call(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
				Width: int64(width), Height: int64(height), DeviceScaleFactor: 1, Mobile: v.Mobile})
			return err
		}))
	}
	steps = append(steps,
		call(func(ctx context.Context, t *chromedp.Target) error {
			// The referrer is sent as given, also to a plain-http page: a search engine's
			// click-through is what a cloaking kit looks for.
			res, err := cdp.Call(ctx, t, page.Navigate, page.NavigateParams{URL: b.target.String(), Referrer: v.Referer,
				ReferrerPolicy: page.ReferrerPolicyUnsafeURL})
			if err == nil && res.ErrorText != "" {
				err = errors.New(res.ErrorText)
			}
			return err
		}),
		chromedp.WaitReady(chromedp.CSS("body")),
		// Kits build the page in their first moments; give the scripts a short while.
		chromedp.Sleep(1500*time.Millisecond),
	)
	var dom string
	var png []byte
	err := chromedp.Do(tab, steps...)
	if err == nil && b.r.inspect != nil {
		if br := chromedp.FromContext(tab).Browser; br != nil && br.Process() != nil {
			b.r.inspect(br.Process().Pid)
		}
	}
	if err == nil {
		dom, err = chromedp.Run(tab, chromedp.OuterHTML(chromedp.CSS("html")))
	}
	if err == nil && shot {
		err = chromedp.Do(tab, call(func(ctx context.Context, t *chromedp.Target) error {
			m, err := cdp.Call(ctx, t, page.GetLayoutMetrics, cdp.Empty{})
			if err != nil {
				return err
			}
			// The whole page's width (a page without a mobile viewport is laid out wider
			// than the phone's screen), and its height up to the bound.
			w, h := float64(width), float64(height)
			if m.CSSContentSize != nil {
				w = max(w, min(m.CSSContentSize.Width, maxShotWidth))
				h = max(h, min(m.CSSContentSize.Height, MaxShotHeight))
			}
			beyond := true
			r, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
				Format: page.CaptureScreenshotFormatPng, CaptureBeyondViewport: &beyond,
				Clip: &page.Viewport{X: 0, Y: 0, Width: w, Height: h, Scale: 1}})
			png = r.Data
			return err
		}))
	}
	if err != nil {
		return nil, nil, b.explain(err, b.ctx)
	}
	if int64(len(dom)) > maxDOM {
		dom = dom[:maxDOM]
	}
	return []byte(dom), png, nil
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
