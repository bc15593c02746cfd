package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestKinds(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "127.8.8.8", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
		"224.0.0.1", "239.1.1.1", "0.0.0.0", "255.255.255.255", "100.64.0.1", "198.18.0.1", "::1", "::", "fe80::1", "fc00::1",
		"fd12:3456::1", "ff02::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "64:ff9b::a00:1"} {
		if !Blocked(netip.MustParseAddr(a)) {
			t.Errorf("%s is not blocked", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "93.184.216.34", "2606:4700::1111", "192.0.2.1"} {
		if Blocked(netip.MustParseAddr(a)) {
			t.Errorf("%s is blocked", a)
		}
	}
}

func TestAllowHostParsing(t *testing.T) {
	for _, bad := range []string{"", ":80", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:http", "a b", "user@host"} {
		if err := (&Guard{}).AllowHost(bad); err == nil {
			t.Errorf("--allow-host %q accepted", bad)
		}
	}
	g := &Guard{}
	for _, ok := range []string{"127.0.0.1:8443", "[::1]:80", "[::1]", "rdap.lan", "RDAP.Example.:443", "::ffff:127.0.0.2"} {
		if err := g.AllowHost(ok); err != nil {
			t.Errorf("--allow-host %q: %v", ok, err)
		}
	}
	cases := []struct {
		host, ip, port string
		ok             bool
	}{
		{"127.0.0.1", "127.0.0.1", "8443", true},
		{"127.0.0.1", "127.0.0.1", "8444", false},   // another port of the same address
		{"localtest.me", "127.0.0.1", "8443", true}, // the address is what was allowed
		{"::1", "::1", "80", true},
		{"::1", "::1", "22", true}, // [::1] without a port: any port
		{"rdap.lan", "10.0.0.7", "1234", true},
		{"rdap.example", "10.0.0.7", "443", true},
		{"rdap.example", "10.0.0.7", "80", false},
		{"other.lan", "10.0.0.7", "1234", false},
		{"127.0.0.2", "127.0.0.2", "5", true},
		{"x", "127.0.0.3", "5", false},
		{"public.example", "93.184.216.34", "443", true},
	}
	for _, c := range cases {
		err := g.Check(c.host, netip.MustParseAddr(c.ip), c.port)
		if (err == nil) != c.ok {
			t.Errorf("Check(%s, %s, %s) = %v, want allowed %v", c.host, c.ip, c.port, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrBlocked) {
			t.Errorf("refusal %v is not ErrBlocked", err)
		}
	}
	var nilGuard *Guard
	if err := nilGuard.Check("x", netip.MustParseAddr("127.0.0.1"), "80"); err == nil || !strings.Contains(err.Error(), "--allow-host 127.0.0.1:80") {
		t.Errorf("a refusal names the flag that lifts it: %v", err)
	}
}

// countingServer answers 200 and counts the requests that reached it.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprint(w, "reached")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// Loopback in every spelling a URL can carry is refused before a byte is sent.
func TestLoopbackSpellingsRefused(t *testing.T) {
	srv, hits := countingServer(t)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	client := (&Guard{}).HTTPClient(2*time.Second, 5)
	for _, host := range []string{"127.0.0.1", "127.1", "127.0.1", "0x7f.0.0.1", "0x7f000001", "2130706433", "017700000001",
		"0177.0.0.1", "localhost", "LOCALHOST.", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[0:0:0:0:0:0:0:1]",
		"0.0.0.0", "0", "[::]"} {
		resp, err := client.Get("http://" + host + ":" + port + "/")
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: fetched (HTTP %d)", host, resp.StatusCode)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback server was reached %d times", n)
	}
}

// A redirect to another local address is a new dial and is refused; the allowed server itself
// is reached.
func TestRedirectToOtherLocalAddressRefused(t *testing.T) {
	target, hits := countingServer(t)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/secret", http.StatusFound)
	}))
	defer front.Close()
	g := &Guard{}
	if err := g.AllowHost(front.Listener.Addr().String()); err != nil {
		t.Fatal(err)
	}
	resp, err := g.HTTPClient(2*time.Second, 5).Get(front.URL + "/")
	if err == nil {
		resp.Body.Close()
	}
	if !errors.Is(err, ErrBlocked) {
		t.Errorf("redirect to %s: %v", target.URL, err)
	}
	if hits.Load() != 0 {
		t.Error("the redirect target was reached")
	}
}

// rebindingDNS answers a public address and loopback in turn for every name, as a rebinding
// attacker's name server does.
func rebindingDNS(t *testing.T) string {
	var n atomic.Int64
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if q.Question[0].Qtype == dns.TypeA {
			ip := "203.0.113.9"
			if n.Add(1)%2 == 0 {
				ip = "127.0.0.1"
			}
			rr, _ := dns.NewRR(q.Question[0].Name + " 0 IN A " + ip)
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})}
	var started sync.WaitGroup
	started.Add(1)
	srv.NotifyStartedFunc = started.Done
	go srv.ActivateAndServe()
	started.Wait()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// DNS answers that change between lookups gain nothing: every connection is checked on the
// address it actually dials.
func TestRebindingRefused(t *testing.T) {
	srv, hits := countingServer(t)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	dnsAddr := rebindingDNS(t)
	g := &Guard{Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", dnsAddr)
	}}}
	client := g.HTTPClient(300*time.Millisecond, 5)
	for i := 0; i < 6; i++ {
		resp, err := client.Get("http://rebind.example:" + port + "/")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("lookup %d reached the server", i)
		}
	}
	if hits.Load() != 0 {
		t.Errorf("reached %d times", hits.Load())
	}
}

func TestAllowPrivateAndAllowedServer(t *testing.T) {
	srv, hits := countingServer(t)
	if resp, err := (&Guard{AllowPrivate: true}).HTTPClient(2*time.Second, 0).Get(srv.URL); err != nil {
		t.Errorf("--allow-private: %v", err)
	} else {
		resp.Body.Close()
	}
	g := &Guard{}
	g.AllowHost(srv.Listener.Addr().String())
	if resp, err := g.HTTPClient(2*time.Second, 0).Get(srv.URL); err != nil {
		t.Errorf("--allow-host %s: %v", srv.Listener.Addr(), err)
	} else {
		resp.Body.Close()
	}
	if hits.Load() != 2 {
		t.Errorf("hits %d", hits.Load())
	}
}
