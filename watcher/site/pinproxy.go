package site

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"
)

// pinProxy is the HTTP proxy one capture's browser contexts go through: it connects the
// page's host, and the hosts pinned beside it, to the addresses the guard already accepted,
// and refuses every other name. It is what host-resolver-rules are for a browser of its own,
// for a browser shared by many captures (a resolver rule is for the whole browser; a proxy
// can be given to one browser context). It listens on loopback, for the life of one capture.
type pinProxy struct {
	ln    net.Listener
	srv   *http.Server
	route func(hostport string) (string, bool)
	rp    *httputil.ReverseProxy

	mu      sync.Mutex
	tunnels map[net.Conn]struct{}
}

// startPinProxy serves on a loopback port; route maps a host:port the browser asks for to the
// address:port to connect to, or refuses it.
func startPinProxy(route func(hostport string) (string, bool)) (*pinProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &pinProxy{ln: ln, route: route, tunnels: map[net.Conn]struct{}{}}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	p.rp = &httputil.ReverseProxy{
		// The request is passed on as the browser made it: no X-Forwarded-For or Via, which a
		// cloaking kit would read as "not a real visitor".
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL = r.In.URL
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, _, hostport string) (net.Conn, error) {
				to, ok := p.route(hostport)
				if !ok {
					return nil, errRefused
				}
				return dialer.DialContext(ctx, "tcp", to)
			},
			DisableCompression:    true,
			ResponseHeaderTimeout: 30 * time.Second,
			MaxIdleConnsPerHost:   2,
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "helpwatch capture proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln) //nolint:errcheck // ends with Close
	return p, nil
}

var errRefused = errors.New("not a host of this capture")

// URL is the proxy's address, as a browser context's proxy server.
func (p *pinProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *pinProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		if r.URL.Host == "" || !strings.EqualFold(r.URL.Scheme, "http") {
			http.Error(w, "helpwatch capture proxy: only absolute http URLs and CONNECT", http.StatusBadRequest)
			return
		}
		p.rp.ServeHTTP(w, r)
		return
	}
	to, ok := p.route(r.Host)
	if !ok {
		http.Error(w, "helpwatch capture proxy: "+errRefused.Error(), http.StatusForbidden)
		return
	}
	up, err := net.DialTimeout("tcp", to, 10*time.Second)
	if err != nil {
		http.Error(w, "helpwatch capture proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "helpwatch capture proxy: cannot tunnel", http.StatusInternalServerError)
		return
	}
	down, buf, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	if !p.track(up, down) {
		up.Close()
		down.Close()
		return
	}
	if _, err := down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		p.untrack(up, down)
		return
	}
	go func() {
		// Bytes the browser sent after its CONNECT, already read into the buffer, go first.
		if n := buf.Reader.Buffered(); n > 0 {
			pending, _ := buf.Reader.Peek(n)
			if _, err := up.Write(pending); err != nil {
				p.untrack(up, down)
				return
			}
		}
		io.Copy(up, down) //nolint:errcheck // a tunnel ends when either side does
		p.untrack(up, down)
	}()
	go func() {
		io.Copy(down, up) //nolint:errcheck
		p.untrack(up, down)
	}()
}

func (p *pinProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tunnels == nil {
		return false
	}
	for _, c := range conns {
		p.tunnels[c] = struct{}{}
	}
	return true
}

func (p *pinProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		c.Close()
		delete(p.tunnels, c)
	}
}

// Close stops the proxy and every tunnel through it: nothing of a finished capture stays open.
func (p *pinProxy) Close() {
	p.srv.Close()
	p.rp.Transport.(*http.Transport).CloseIdleConnections()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.tunnels {
		c.Close()
	}
	p.tunnels = nil
}
