package site

import (
	"cmp"
	"compress/flate"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
	"golang.org/x/net/html/charset"

	"github.com/helpwatch/helpwatch/watcher/netguard"
)

// DefaultUserAgent looks like a current desktop browser: kits serve their real page to
// browsers and something bland to tools.
const DefaultUserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// ErrBlockedAddress is the address guard refusing a connection (netguard.ErrBlocked).
var ErrBlockedAddress = netguard.ErrBlocked

// Fetcher fetches suspect sites safely: every connection (redirect hops included) is checked
// after DNS resolution, at dial time, so a name that resolves to a private address (or changes
// to one between lookups) is refused; redirects, time and size are bounded; compressed and
// non-UTF-8 bodies are decoded within the same bounds.
type Fetcher struct {
	UserAgent    string
	Timeout      time.Duration // whole fetch, redirects included (default 10 s)
	MaxBody      int64         // decoded body (default 2 MiB)
	MaxRedirects int           // default 5
	// Guard decides which addresses may be dialled (nil: public addresses only); the
	// commands' --allow-host and --allow-private configure it.
	Guard *netguard.Guard
	// Global and PerHost bound concurrent fetches (defaults 16 and 2).
	Global, PerHost int
	// Rewrite maps the host:port a request dials to another (tests send every name to a local
	// server); the guard still checks the address dialled.
	Rewrite func(hostport string) string

	once    sync.Once
	client  *http.Client
	global  chan struct{}
	mu      sync.Mutex
	perHost map[string]chan struct{}
}

// Fetched is one page as fetched.
type Fetched struct {
	URL         string   `json:"url"`
	FinalURL    string   `json:"final_url,omitempty"`
	Status      int      `json:"status,omitempty"`
	ContentType string   `json:"content_type,omitempty"`
	Redirects   []string `json:"redirects,omitempty"`
	Truncated   bool     `json:"truncated,omitempty"`
	// Padding is how many bytes of long comments and blank runs were skipped while reading.
	Padding int64 `json:"padding,omitempty"`
	// Addr is the IP the final request connected to (what a renderer is pinned to).
	Addr string `json:"addr,omitempty"`
	// Header is the final response's header (bounded by the transport's header limit).
	Header http.Header `json:"-"`
	// PeerCert is the DER of the certificate the final https response was served with.
	PeerCert []byte `json:"-"`
	Body     []byte `json:"-"`
	Err      error  `json:"-"`
}

func (f *Fetcher) init() {
	f.once.Do(func() {
		if f.Timeout <= 0 {
			f.Timeout = 10 * time.Second
		}
		if f.MaxBody <= 0 {
			f.MaxBody = 2 << 20
		}
		if f.MaxRedirects <= 0 {
			f.MaxRedirects = 5
		}
		if f.UserAgent == "" {
			f.UserAgent = DefaultUserAgent
		}
		if f.Global <= 0 {
			f.Global = 16
		}
		if f.PerHost <= 0 {
			f.PerHost = 2
		}
		f.global = make(chan struct{}, f.Global)
		f.perHost = map[string]chan struct{}{}
		dialer := f.Guard.DialContext(&net.Dialer{Timeout: 5 * time.Second})
		dial := dialer
		if f.Rewrite != nil {
			dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialer(ctx, network, f.Rewrite(addr))
			}
		}
		transport := &http.Transport{
			DialContext:            dial,
			TLSHandshakeTimeout:    5 * time.Second,
			ResponseHeaderTimeout:  f.Timeout,
			MaxResponseHeaderBytes: 64 << 10,
			DisableCompression:     true, // decoded here, within the size bound
			MaxIdleConnsPerHost:    2,
			IdleConnTimeout:        30 * time.Second,
		}
		f.client = &http.Client{Transport: transport, CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > f.MaxRedirects {
				return fmt.Errorf("more than %d redirects", f.MaxRedirects)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to %q refused", req.URL.Scheme)
			}
			return nil
		}}
	})
}

func (f *Fetcher) hostSlot(host string) chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.perHost[host]
	if !ok {
		c = make(chan struct{}, f.PerHost)
		f.perHost[host] = c
	}
	return c
}

// Fetch gets target: a URL, or a bare name tried as https:// and then http:// when the secure
// connection cannot be made.
func (f *Fetcher) Fetch(ctx context.Context, target string) *Fetched {
	return f.FetchAs(ctx, target, Visitor{})
}

// Visitor is who a fetch poses as: kits cloak, showing their page only to some browsers or
// to visitors coming from a search engine. Empty fields keep the Fetcher's defaults.
type Visitor struct {
	UserAgent string
	Referer   string
}

// FetchAs is Fetch posing as visitor v.
func (f *Fetcher) FetchAs(ctx context.Context, target string, v Visitor) *Fetched {
	f.init()
	urls := []string{target}
	if !strings.Contains(target, "://") {
		urls = []string{"https://" + target + "/", "http://" + target + "/"}
	}
	var last *Fetched
	for _, u := range urls {
		last = f.fetchURL(ctx, u, v)
		if last.Err == nil || last.Status != 0 || ctx.Err() != nil || errors.Is(last.Err, ErrBlockedAddress) {
			return last
		}
	}
	return last
}

func (f *Fetcher) fetchURL(ctx context.Context, target string, v Visitor) *Fetched {
	out := &Fetched{URL: target}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		out.Err = fmt.Errorf("not an http(s) URL: %q", target)
		return out
	}
	for _, slot := range []chan struct{}{f.global, f.hostSlot(u.Hostname())} {
		select {
		case slot <- struct{}{}:
			defer func(c chan struct{}) { <-c }(slot)
		case <-ctx.Done():
			out.Err = ctx.Err()
			return out
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		out.Err = err
		return out
	}
	req.Header.Set("User-Agent", cmp.Or(v.UserAgent, f.UserAgent))
	if v.Referer != "" {
		req.Header.Set("Referer", v.Referer)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	req.Header.Set("Accept-Encoding", "gzip, deflate, br")
	req.Header.Set("Accept-Language", "en-US,en;q=0.9")
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if host, _, err := net.SplitHostPort(info.Conn.RemoteAddr().String()); err == nil {
			out.Addr = host
		}
	}}))
	resp, err := f.client.Do(req)
	if err != nil {
		out.Err = err
		return out
	}
	defer resp.Body.Close()
	out.Status, out.ContentType, out.FinalURL = resp.StatusCode, resp.Header.Get("Content-Type"), resp.Request.URL.String()
	out.Header = resp.Header
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		out.PeerCert = resp.TLS.PeerCertificates[0].Raw
	}
	for r := resp.Request; r != nil && r.Response != nil; r = r.Response.Request {
		out.Redirects = append([]string{r.Response.Request.URL.String()}, out.Redirects...)
	}
	var cut Cut
	out.Body, cut, out.Err = f.readBody(resp)
	out.Truncated, out.Padding = cut.Truncated, cut.Padding
	return out
}

// readBody decodes the content encoding and the charset, keeping at most MaxBody bytes of the
// result; what arrived before a timeout or a broken connection is kept with the error.
func (f *Fetcher) readBody(resp *http.Response) ([]byte, Cut, error) {
	raw := io.LimitReader(resp.Body, 4*f.MaxBody) // compressed bytes read at most
	var r io.Reader = raw
	switch strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))) {
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(raw)
		if err != nil {
			return nil, Cut{}, fmt.Errorf("gzip: %w", err)
		}
		r = gz
	case "deflate":
		r = flate.NewReader(raw)
	case "br":
		r = brotli.NewReader(raw)
	}
	// Read first, decode after: a charset reader reads ahead, and would lose what a slow server
	// sent before it stalled. Padding (long comments, blank runs) is skipped as it is read, so
	// that it cannot use up the size limit and hide the page behind it.
	body, cut, err := readSqueezed(r, f.MaxBody)
	if cut.Truncated {
		err = nil
	}
	if enc, name, _ := charset.DetermineEncoding(body, resp.Header.Get("Content-Type")); name != "utf-8" && enc != nil {
		if decoded, derr := enc.NewDecoder().Bytes(body); derr == nil {
			body = decoded[:min(len(decoded), int(f.MaxBody))]
		}
	}
	return body, cut, err
}
