package site

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"time"
)

// Renderer builds script-made pages (React and Next.js kits ship an empty shell) in headless
// Chromium and returns the resulting DOM. It is bounded: a time budget, a cap on the output,
// a small JavaScript heap, a throw-away profile, and name resolution pinned to the address the
// guarded fetch already accepted, so neither the page nor its scripts reach any other host (no
// detour to a private address, no third-party downloads).
type Renderer struct {
	Browser string        // path of chromium; empty looks it up
	Timeout time.Duration // default 15 s
	MaxDOM  int64         // default 2 MiB
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

// Render loads target with its host pinned to addr (the IP the fetch connected to; empty
// for an IP-literal URL) and returns the DOM after scripts ran.
func (r *Renderer) Render(ctx context.Context, target, addr string) ([]byte, error) {
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
	profile, err := os.MkdirTemp("", "helpwatch-render-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(profile)
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
	rules := fmt.Sprintf("MAP %s %s, MAP * ~NOTFOUND", host, pinned)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
		"--user-data-dir="+profile, "--disable-extensions", "--disable-background-networking", "--disable-sync",
		"--blink-settings=imagesEnabled=false", "--js-flags=--max-old-space-size=128", "--host-resolver-rules="+rules,
		"--virtual-time-budget=5000", "--dump-dom", u.String())
	var out bytes.Buffer
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	_, copyErr := io.Copy(&out, io.LimitReader(stdout, maxDOM))
	io.Copy(io.Discard, stdout) // let the browser finish writing; nothing past the cap is kept
	waitErr := cmd.Wait()
	if ctx.Err() != nil {
		return out.Bytes(), fmt.Errorf("render: %s did not finish within %s", target, timeout)
	}
	if copyErr != nil {
		return out.Bytes(), copyErr
	}
	if waitErr != nil && out.Len() == 0 {
		return nil, fmt.Errorf("render: %w", waitErr)
	}
	return out.Bytes(), nil
}

// NeedsRender guesses that a page is a script shell: little text to read, scripts to run.
func NeedsRender(p *Page) bool {
	return len(bytes.Fields([]byte(p.Text))) < 40 && len(p.ScriptHosts) > 0 || len(bytes.Fields([]byte(p.Text))) < 5
}
