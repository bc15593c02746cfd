package enrich

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openrdap/rdap"
	"github.com/openrdap/rdap/bootstrap"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/internal/safe"
	"github.com/helpwatch/helpwatch/watcher/netguard"
)

// IANABootstrapURL is where IANA publishes the RDAP servers of each TLD.
const IANABootstrapURL = "https://data.iana.org/rdap/dns.json"

// builtinBootstrap covers the TLDs printer scams use most, for a machine that has neither a
// cached copy nor access to IANA. It is a fallback only: the real file lists every TLD.
//
//go:embed bootstrap_builtin.json
var builtinBootstrap []byte

// Bootstrap maps a TLD to its RDAP servers.
type Bootstrap struct {
	registry *bootstrap.DNSRegistry
	Source   string // where it was loaded from, for logs
}

// BootstrapOptions say where the bootstrap file comes from.
type BootstrapOptions struct {
	// Path or URL of a bootstrap file to use as is (no cache). Empty: the IANA file through the
	// cache.
	Location string
	// IANAURL is where the file is downloaded from (default IANABootstrapURL).
	IANAURL string
	// CacheDir keeps the downloaded IANA file; it is refreshed when older than MaxAge (1 day).
	CacheDir string
	MaxAge   time.Duration
	// HTTP downloads the file (default: a client through the default address guard).
	HTTP *http.Client
}

// LoadBootstrap finds a bootstrap file: the configured one; else the cached IANA copy while
// fresh; else a new download (cached); else the stale cache; else the built-in copy. Only a
// configured location that fails is an error: the other steps fall through and say so in Source.
func LoadBootstrap(ctx context.Context, opts BootstrapOptions) (*Bootstrap, error) {
	client := opts.HTTP
	if client == nil {
		client = (*netguard.Guard)(nil).HTTPClient(20*time.Second, 5)
	}
	if opts.Location != "" {
		data, err := readLocation(ctx, client, opts.Location)
		if err != nil {
			return nil, fmt.Errorf("RDAP bootstrap %s: %w", opts.Location, err)
		}
		return parseBootstrap(data, opts.Location)
	}
	maxAge := opts.MaxAge
	if maxAge <= 0 {
		maxAge = 24 * time.Hour
	}
	var cached []byte
	cachePath := ""
	if opts.CacheDir != "" {
		cachePath = filepath.Join(opts.CacheDir, "rdap-dns.json")
		if st, err := os.Stat(cachePath); err == nil {
			cached, _ = os.ReadFile(cachePath)
			if time.Since(st.ModTime()) < maxAge {
				if b, err := parseBootstrap(cached, cachePath); err == nil {
					return b, nil
				}
			}
		}
	}
	iana := opts.IANAURL
	if iana == "" {
		iana = IANABootstrapURL
	}
	fresh, err := readLocation(ctx, client, iana)
	if err == nil {
		if b, perr := parseBootstrap(fresh, iana); perr == nil {
			if cachePath != "" {
				if os.MkdirAll(opts.CacheDir, 0o755) == nil {
					_ = os.WriteFile(cachePath+".tmp", fresh, 0o644)
					_ = os.Rename(cachePath+".tmp", cachePath)
				}
			}
			return b, nil
		}
	}
	if cached != nil {
		if b, perr := parseBootstrap(cached, cachePath+" (stale: "+errString(err)+")"); perr == nil {
			return b, nil
		}
	}
	return parseBootstrap(builtinBootstrap, "built-in list (IANA unreachable: "+errString(err)+")")
}

func errString(err error) string {
	if err == nil {
		return "unusable file"
	}
	return err.Error()
}

func readLocation(ctx context.Context, client *http.Client, loc string) ([]byte, error) {
	if !strings.HasPrefix(loc, "http://") && !strings.HasPrefix(loc, "https://") {
		return os.ReadFile(loc)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	return readBounded(resp.Body, 4<<20)
}

func parseBootstrap(data []byte, source string) (*Bootstrap, error) {
	var reg *bootstrap.DNSRegistry
	err := safe.Do("openrdap bootstrap", func() error {
		var err error
		reg, err = bootstrap.NewDNSRegistry(data)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("RDAP bootstrap %s: %w", source, err)
	}
	return &Bootstrap{registry: reg, Source: source}, nil
}

// Servers returns the RDAP base URLs for domain's TLD (none when the TLD has no RDAP).
func (b *Bootstrap) Servers(domain string) []*url.URL {
	var ans *bootstrap.Answer
	err := safe.Do("openrdap bootstrap lookup", func() error {
		var err error
		ans, err = b.registry.Lookup(&bootstrap.Question{RegistryType: bootstrap.DNS, Query: domain})
		return err
	})
	if err != nil || ans == nil {
		return nil
	}
	return ans.URLs
}

var errTooLarge = errors.New("answer too large")

// readBounded reads at most limit bytes; more is an error rather than a silent truncation,
// because a cut JSON document cannot be parsed anyway.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w (over %d bytes)", errTooLarge, limit)
	}
	return data, nil
}

// RDAP looks domains up in the registries' RDAP services. Every request (the bootstrap
// download, the registry, the registrar it links to, and every redirect) goes through the
// address guard: a registry's or registrar's answer must not make us fetch from our own network.
type RDAP struct {
	// Bootstrap maps TLDs to servers; when nil it is loaded with BootstrapOptions on the first
	// lookup, so a watch starts at once even when IANA is slow or unreachable.
	Bootstrap        *Bootstrap
	BootstrapOptions BootstrapOptions
	OnBootstrap      func(b *Bootstrap) // told where the bootstrap came from (for the log)
	bootMu           sync.Mutex
	// Guard decides which addresses may be dialled (nil: public addresses only).
	Guard     *netguard.Guard
	Timeout   time.Duration // per request, redirects included (default 10 s)
	Limits    *Limits
	MaxBody   int64 // default 1 MiB
	UserAgent string

	clientOnce sync.Once
	client     *http.Client
}

// httpClient is built once from the guard: at most 3 redirects, each dial checked.
func (r *RDAP) httpClient() *http.Client {
	r.clientOnce.Do(func() {
		timeout := r.Timeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		r.client = r.Guard.HTTPClient(timeout, 3)
	})
	return r.client
}

// Lookup asks the TLD's RDAP server for domain and, when the registry points to the
// registrar's own RDAP (thin registries such as .com), the registrar too; the registrar's
// answer fills what the registry's lacks. Unknown means "ask WHOIS"; the reason says why.
func (r *RDAP) Lookup(ctx context.Context, domain string) watcher.Registration {
	reg := r.lookup(ctx, domain)
	reg.Sanitize()
	return reg
}

func (r *RDAP) lookup(ctx context.Context, domain string) watcher.Registration {
	boot, err := r.bootstrap(ctx)
	if err != nil {
		return watcher.Registration{State: watcher.Unknown, Source: "rdap", Reason: err.Error()}
	}
	servers := boot.Servers(domain)
	if len(servers) == 0 {
		return watcher.Registration{State: watcher.Unknown, Source: "rdap", Reason: "no RDAP server for ." + tldOf(domain)}
	}
	base := servers[0].String()
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	reg, d := r.fetch(ctx, base+"domain/"+url.PathEscape(domain))
	if reg.State != watcher.Found {
		return reg
	}
	for _, l := range d.Links {
		if l.Rel != "related" || !strings.Contains(l.Type, "rdap") || l.Href == "" {
			continue
		}
		if u, err := url.Parse(l.Href); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == servers[0].Host {
			continue
		}
		if more, _ := r.fetch(ctx, l.Href); more.State == watcher.Found {
			merge(&reg, &more)
		}
		break
	}
	return reg
}

func (r *RDAP) bootstrap(ctx context.Context) (*Bootstrap, error) {
	r.bootMu.Lock()
	defer r.bootMu.Unlock()
	if r.Bootstrap != nil {
		return r.Bootstrap, nil
	}
	opts := r.BootstrapOptions
	if opts.HTTP == nil {
		opts.HTTP = r.Guard.HTTPClient(20*time.Second, 5)
	}
	b, err := LoadBootstrap(ctx, opts)
	if err != nil {
		return nil, err
	}
	r.Bootstrap = b
	if r.OnBootstrap != nil {
		r.OnBootstrap(b)
	}
	return b, nil
}

func (r *RDAP) fetch(ctx context.Context, href string) (watcher.Registration, *rdap.Domain) {
	reg := watcher.Registration{Source: "rdap", Server: href}
	unknown := func(format string, args ...any) (watcher.Registration, *rdap.Domain) {
		reg.State, reg.Reason = watcher.Unknown, fmt.Sprintf(format, args...)
		return reg, nil
	}
	u, err := url.Parse(href)
	if err != nil {
		return unknown("bad RDAP URL %q", href)
	}
	reg.Server = u.Host
	limits := r.Limits
	if limits == nil {
		limits = &Limits{}
	}
	if err := limits.Wait(ctx, u.Host); err != nil {
		var paused *PausedError
		if errors.As(err, &paused) {
			reg.RetryAt = paused.Until
		}
		return unknown("%s: %v", u.Host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, href, nil)
	if err != nil {
		return unknown("%s: %v", u.Host, err)
	}
	req.Header.Set("Accept", "application/rdap+json, application/json")
	if r.UserAgent != "" {
		req.Header.Set("User-Agent", r.UserAgent)
	}
	resp, err := r.httpClient().Do(req)
	if err != nil {
		return unknown("%s: %v", u.Host, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		limits.Recovered(u.Host)
		reg.State = watcher.NotFound
		return reg, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		d := limits.Pause(u.Host, retryAfter(resp.Header.Get("Retry-After")))
		reg.RetryAt = time.Now().Add(d)
		return unknown("%s: rate limited (HTTP 429), pausing it for %s", u.Host, d.Round(time.Second))
	case resp.StatusCode != http.StatusOK:
		return unknown("%s: HTTP %s", u.Host, resp.Status)
	}
	limits.Recovered(u.Host)
	maxBody := r.MaxBody
	if maxBody <= 0 {
		maxBody = 1 << 20
	}
	body, err := readBounded(resp.Body, maxBody)
	if err != nil {
		return unknown("%s: %v", u.Host, err)
	}
	var obj any
	err = safe.Do("openrdap decoder", func() error {
		var err error
		obj, err = rdap.NewDecoder(body).Decode()
		return err
	})
	if err != nil {
		return unknown("%s: unreadable RDAP answer: %v", u.Host, err)
	}
	switch v := obj.(type) {
	case *rdap.Domain:
		if err := safe.Do("reading the RDAP domain", func() error { fillFromRDAP(&reg, v); return nil }); err != nil {
			return unknown("%s: %v", u.Host, err)
		}
		reg.State = watcher.Found
		return reg, v
	case *rdap.Error:
		code := 0
		if v.ErrorCode != nil {
			code = int(*v.ErrorCode)
		}
		if code == 404 {
			reg.State = watcher.NotFound
			return reg, nil
		}
		return unknown("%s: RDAP error %d %s", u.Host, code, v.Title)
	}
	return unknown("%s: RDAP answer is not a domain object", u.Host)
}

// retryAfter reads a Retry-After header given in seconds (the HTTP-date form is rare here).
func retryAfter(h string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n > 0 {
		return min(time.Duration(n)*time.Second, time.Hour)
	}
	return 0
}

func fillFromRDAP(reg *watcher.Registration, d *rdap.Domain) {
	for _, ev := range d.Events {
		if ev.Action == "registration" {
			if t, err := time.Parse(time.RFC3339, ev.Date); err == nil {
				reg.Created = t.UTC()
			}
		}
	}
	for _, ns := range d.Nameservers {
		if ns.LDHName != "" {
			reg.NameServers = append(reg.NameServers, strings.ToLower(strings.TrimSuffix(ns.LDHName, ".")))
		}
	}
	reg.Statuses = append(reg.Statuses, d.Status...)
	for i := range d.Entities {
		e := &d.Entities[i]
		switch {
		case hasRole(e.Roles, "registrar"):
			if e.VCard != nil {
				reg.Registrar = e.VCard.Name()
			}
			for _, id := range e.PublicIDs {
				if strings.Contains(strings.ToLower(id.Type), "iana") {
					reg.RegistrarIANAID = id.Identifier
				}
			}
			for j := range e.Entities {
				if hasRole(e.Entities[j].Roles, "abuse") && e.Entities[j].VCard != nil {
					takeAbuse(reg, e.Entities[j].VCard)
				}
			}
		case hasRole(e.Roles, "abuse") && e.VCard != nil:
			takeAbuse(reg, e.VCard)
		}
	}
}

func takeAbuse(reg *watcher.Registration, v *rdap.VCard) {
	if reg.AbuseEmail == "" {
		reg.AbuseEmail = strings.TrimPrefix(v.Email(), "mailto:")
	}
	if reg.AbusePhone == "" {
		reg.AbusePhone = strings.TrimPrefix(v.Tel(), "tel:")
	}
}

func hasRole(roles []string, role string) bool {
	for _, r := range roles {
		if strings.EqualFold(r, role) {
			return true
		}
	}
	return false
}

// merge fills what reg lacks from more (the registrar's answer after the registry's).
func merge(reg, more *watcher.Registration) {
	if reg.Created.IsZero() {
		reg.Created = more.Created
	}
	if reg.Registrar == "" {
		reg.Registrar = more.Registrar
	}
	if reg.RegistrarIANAID == "" {
		reg.RegistrarIANAID = more.RegistrarIANAID
	}
	if reg.AbuseEmail == "" {
		reg.AbuseEmail = more.AbuseEmail
	}
	if reg.AbusePhone == "" {
		reg.AbusePhone = more.AbusePhone
	}
	if len(reg.NameServers) == 0 {
		reg.NameServers = more.NameServers
	}
	reg.Server += " + " + more.Server
}

func tldOf(domain string) string {
	if i := strings.LastIndexByte(domain, '.'); i >= 0 {
		return domain[i+1:]
	}
	return domain
}
