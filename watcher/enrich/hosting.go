package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/openrdap/rdap"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/internal/safe"
	"github.com/helpwatch/helpwatch/watcher/netguard"
)

// IANA publishes which regional registry serves each address block.
const (
	IANAIPv4BootstrapURL = "https://data.iana.org/rdap/ipv4.json"
	IANAIPv6BootstrapURL = "https://data.iana.org/rdap/ipv6.json"
)

// fallbackIPRDAP is asked when no bootstrap file could be read: ARIN's RDAP answers for its
// own blocks and redirects to the regional registry that holds any other.
const fallbackIPRDAP = "https://rdap.arin.net/registry/"

// Hosting finds the network an address belongs to, and its abuse desk, in the RDAP of the
// regional registry that holds the block (IANA's IP bootstrap says which). Every request,
// redirects included, goes through the address guard.
type Hosting struct {
	// Bootstraps are the IP bootstrap files (paths or URLs), IPv4 and IPv6; empty: IANA's.
	Bootstraps []string
	Guard      *netguard.Guard
	Timeout    time.Duration // per request (default 10 s)
	MaxBody    int64         // default 1 MiB
	UserAgent  string

	clientOnce sync.Once
	client     *http.Client
	mu         sync.Mutex
	services   []ipService
	bootErr    error
	triedAt    time.Time
}

// bootRetry is how long a bootstrap that could not be read is left before it is tried again
// (meanwhile addresses go to the fallback registry).
const bootRetry = 10 * time.Minute

type ipService struct {
	prefix netip.Prefix
	base   string
}

func (h *Hosting) init(ctx context.Context) {
	h.clientOnce.Do(func() {
		timeout := h.Timeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		h.client = h.Guard.HTTPClient(timeout, 3)
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.services) > 0 || (!h.triedAt.IsZero() && time.Since(h.triedAt) < bootRetry) {
		return
	}
	h.triedAt = time.Now()
	locs := h.Bootstraps
	if len(locs) == 0 {
		locs = []string{IANAIPv4BootstrapURL, IANAIPv6BootstrapURL}
	}
	// The files are the deployment's, not the job's: a capture stopped while they load must
	// not leave every later lookup on the fallback.
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for _, loc := range locs {
		data, err := readLocation(ctx, h.client, loc)
		if err == nil {
			var more []ipService
			more, err = parseIPBootstrap(data)
			h.services = append(h.services, more...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("IP RDAP bootstrap %s: %w", loc, err))
		}
	}
	h.bootErr = errors.Join(errs...)
}

// parseIPBootstrap reads an RFC 9224 IP bootstrap file: services of [prefixes, base URLs].
func parseIPBootstrap(data []byte) ([]ipService, error) {
	var doc struct {
		Services [][][]string `json:"services"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	var out []ipService
	for _, svc := range doc.Services {
		if len(svc) < 2 || len(svc[1]) == 0 {
			continue
		}
		base := svc[1][0]
		for _, u := range svc[1] {
			if strings.HasPrefix(u, "https://") {
				base = u
				break
			}
		}
		for _, p := range svc[0] {
			if pre, err := netip.ParsePrefix(p); err == nil {
				out = append(out, ipService{prefix: pre.Masked(), base: base})
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no services")
	}
	return out, nil
}

// server is the RDAP base URL for addr: the longest bootstrap prefix that holds it.
func (h *Hosting) server(addr netip.Addr) string {
	best, bits := "", -1
	for _, s := range h.services {
		if s.prefix.Contains(addr) && s.prefix.Bits() > bits {
			best, bits = s.base, s.prefix.Bits()
		}
	}
	if best == "" {
		return fallbackIPRDAP
	}
	return best
}

// Lookup returns the network of address. Unknown, with the reason, when no registry answered
// or the answer could not be read; NotFound when the registry has no record.
func (h *Hosting) Lookup(ctx context.Context, address string) watcher.Hosting {
	out := watcher.Hosting{Address: address, State: watcher.Unknown}
	addr, err := netip.ParseAddr(address)
	if err != nil {
		out.Reason = fmt.Sprintf("%q is not an IP address", address)
		return out
	}
	h.init(ctx)
	h.mu.Lock()
	base := h.server(addr.Unmap())
	bootErr := h.bootErr
	h.mu.Unlock()
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	href := base + "ip/" + url.PathEscape(addr.Unmap().String())
	u, _ := url.Parse(href)
	out.Source = u.Host
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, href, nil)
	if err != nil {
		out.Reason = err.Error()
		return out
	}
	req.Header.Set("Accept", "application/rdap+json, application/json")
	if h.UserAgent != "" {
		req.Header.Set("User-Agent", h.UserAgent)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		out.Reason = fmt.Sprintf("%s: %v", u.Host, err)
		if bootErr != nil {
			out.Reason += " (" + bootErr.Error() + ")"
		}
		return out
	}
	defer resp.Body.Close()
	out.Source = resp.Request.URL.Host
	switch {
	case resp.StatusCode == http.StatusNotFound:
		out.State = watcher.NotFound
		return out
	case resp.StatusCode != http.StatusOK:
		out.Reason = fmt.Sprintf("%s: HTTP %s", out.Source, resp.Status)
		return out
	}
	maxBody := h.MaxBody
	if maxBody <= 0 {
		maxBody = 1 << 20
	}
	body, err := readBounded(resp.Body, maxBody)
	if err != nil {
		out.Reason = fmt.Sprintf("%s: %v", out.Source, err)
		return out
	}
	var obj any
	err = safe.Do("openrdap decoder", func() error {
		var err error
		obj, err = rdap.NewDecoder(body).Decode()
		return err
	})
	if err != nil {
		out.Reason = fmt.Sprintf("%s: unreadable RDAP answer: %v", out.Source, err)
		return out
	}
	n, ok := obj.(*rdap.IPNetwork)
	if !ok {
		out.Reason = fmt.Sprintf("%s: the RDAP answer is not an IP network", out.Source)
		return out
	}
	if err := safe.Do("reading the RDAP network", func() error { fillHosting(&out, n); return nil }); err != nil {
		out.Reason = err.Error()
		return out
	}
	out.State = watcher.Found
	sanitizeHosting(&out)
	return out
}

func fillHosting(out *watcher.Hosting, n *rdap.IPNetwork) {
	out.Network = n.Handle
	if n.StartAddress != "" && n.EndAddress != "" {
		out.Network = strings.TrimSpace(n.Handle + " " + n.StartAddress + " - " + n.EndAddress)
	}
	out.Name, out.Country = n.Name, strings.ToUpper(n.Country)
	// The abuse contact is an entity of the network, or of the organisation that holds it
	// (ARIN nests it one level down).
	var walk func(es []rdap.Entity, depth int)
	walk = func(es []rdap.Entity, depth int) {
		for i := range es {
			e := &es[i]
			if e.VCard != nil && out.Org == "" && (hasRole(e.Roles, "registrant") || hasRole(e.Roles, "administrative")) {
				out.Org = e.VCard.Name()
			}
			if e.VCard != nil && out.AbuseEmail == "" && hasRole(e.Roles, "abuse") {
				out.AbuseEmail = strings.TrimPrefix(e.VCard.Email(), "mailto:")
			}
			if depth < 3 {
				walk(e.Entities, depth+1)
			}
		}
	}
	walk(n.Entities, 0)
}

// sanitizeHosting bounds and cleans what an attacker-influenced registry record may hold
// (a hosting provider's own customer may write its network's name).
func sanitizeHosting(h *watcher.Hosting) {
	clean := func(s string, n int) string {
		s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }), " ")
		if len(s) > n {
			s = s[:n]
		}
		return strings.TrimSpace(s)
	}
	h.Network, h.Name, h.Org = clean(h.Network, 200), clean(h.Name, 200), clean(h.Org, 200)
	h.AbuseEmail, h.Country = clean(h.AbuseEmail, 254), clean(h.Country, 2)
	if strings.ContainsAny(h.AbuseEmail, " <>\"") || !strings.Contains(h.AbuseEmail, "@") {
		h.AbuseEmail = ""
	}
}
