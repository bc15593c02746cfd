package enrich

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
)

// A registry answer whose last line is the registrar referral, with no newline after it, made
// likexian/whois panic (slice bounds out of range) and took the whole process down. The lookup
// now reads the registry's answer, follows the referral itself and keeps both.
func TestWHOISReferralWithoutTrailingNewline(t *testing.T) {
	registrar := enrichtest.StartWHOIS(t, func(q string) (string, bool) {
		return "Domain Name: " + strings.ToUpper(q) + "\nRegistrar: Example Registrar, LLC\n" +
			"Registrar Abuse Contact Email: abuse@registrar.test\n", false
	})
	registry := enrichtest.StartWHOIS(t, func(q string) (string, bool) {
		return "Domain Name: " + strings.ToUpper(q) + "\nCreation Date: 2026-11-20T09:00:00Z\nRegistrar: Example Registrar, LLC\n" +
			"Registrar WHOIS Server: " + registrar.Addr, false // no newline: the answer ends here
	})
	w := &WHOIS{Server: registry.Addr, Timeout: time.Second, Guard: allowLocal(t, registry.Addr, registrar.Addr)}
	reg := w.Lookup(context.Background(), "hp-printer-help.com")
	if reg.State != watcher.Found || reg.AbuseEmail != "abuse@registrar.test" || reg.Created.Year() != 2026 || len(registrar.Times()) != 1 {
		t.Errorf("registry + referral without newline: %+v (registrar asked %d times)", reg, len(registrar.Times()))
	}
	// Cut after the key: no server named, nothing followed, the registry's answer stands.
	cut := enrichtest.StartWHOIS(t, func(q string) (string, bool) {
		return "Domain Name: X.COM\nCreation Date: 2026-11-20T09:00:00Z\nRegistrar WHOIS Server:", false
	})
	w = &WHOIS{Server: cut.Addr, Timeout: time.Second, Guard: allowLocal(t, cut.Addr)}
	if reg := w.Lookup(context.Background(), "x.com"); reg.State != watcher.Found {
		t.Errorf("answer cut after the referral key: %+v", reg)
	}
}

// A referral is a server name the registry wrote; it goes through the address guard like any
// connection: a registry naming another local port gets no connection there.
func TestWHOISReferralIntoOwnNetworkRefused(t *testing.T) {
	inside := enrichtest.StartWHOIS(t, func(q string) (string, bool) { return "Registrar: Inside\n", false })
	registry := enrichtest.StartWHOIS(t, func(q string) (string, bool) {
		return "Domain Name: X.COM\nCreation Date: 2026-11-20T09:00:00Z\nRegistrar WHOIS Server: " + inside.Addr + "\n", false
	})
	w := &WHOIS{Server: registry.Addr, Timeout: time.Second, Guard: allowLocal(t, registry.Addr)}
	reg := w.Lookup(context.Background(), "x.com")
	if len(inside.Times()) != 0 {
		t.Fatal("the referral reached a local server that was not let through")
	}
	if reg.State != watcher.Found || !strings.Contains(reg.Reason, "refusing to connect") {
		t.Errorf("refused referral: %+v", reg)
	}
}

func TestReferralParsing(t *testing.T) {
	for text, want := range map[string]string{
		"Registrar WHOIS Server: whois.registrar.test\n":                  "whois.registrar.test",
		"   Registrar WHOIS Server: WHOIS.Registrar.TEST:4343":            "whois.registrar.test:4343",
		"Registrar WHOIS Server: whois://whois.r.test/\n":                 "whois.r.test",
		"ReferralServer: rwhois://rwhois.r.test:4321/auth-area=.\n":       "rwhois.r.test:4321",
		"Registrar WHOIS Server: http://www.r.test/whois?q=1\n":           "www.r.test",
		"Registrar WHOIS Server:\n":                                       "",
		"Registrar WHOIS Server: \n":                                      "",
		"Registrar WHOIS Server: evil\x1b[2J.test\n":                      "",
		"Registrar WHOIS Server: a.test:0\n":                              "",
		"Registrar WHOIS Server: a.test:99999\n":                          "",
		"Registrar WHOIS Server: " + strings.Repeat("a", 300) + ".test\n": "",
		"Domain Name: X.COM\n":                                            "",
	} {
		if got := referral(text); got != want {
			t.Errorf("referral(%q) = %q, want %q", text, got, want)
		}
	}
}

// memoryWHOIS answers every dial from memory: the registry's answer for the first server, the
// registrar's for any other. The real library client reads and writes through these pipes.
func memoryWHOIS(registry, registrar []byte) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		answer := registrar
		if strings.HasPrefix(addr, "registry.test:") {
			answer = registry
		}
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			server.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := bufio.NewReader(server).ReadString('\n'); err != nil {
				return
			}
			server.Write(answer)
		}()
		return client, nil
	}
}

// FuzzWHOISReferral runs the whole lookup (likexian/whois's client, the referral step,
// whois-parser and our extraction) on hostile registry and registrar answers: it never
// panics, always ends in a state, and never yields a contact field with a control character.
func FuzzWHOISReferral(f *testing.F) {
	f.Add([]byte("Domain Name: X.COM\nRegistrar WHOIS Server: whois.registrar.test"), []byte("Registrar: R\nRegistrar Abuse Contact Email: a@b.test\n"))
	f.Add([]byte("Registrar WHOIS Server: "), []byte(""))
	f.Add([]byte("whois: "), []byte("x"))
	f.Add([]byte("ReferralServer: rwhois://x.test:"), []byte("%referral "))
	f.Add([]byte("Domain Name: X.COM\nCreation Date: 2026-11-20T09:00:00Z\nRegistrar WHOIS Server: whois.r.test:43\n"),
		[]byte("Registrar: \x1b[31mEvil\u202e\nRegistrar Abuse Contact Email: a@b.test\r\nRegistrar Abuse Contact Phone: +1.5555550100\n"))
	f.Add([]byte("No match for \"X.COM\".\n"), []byte(""))
	f.Fuzz(func(t *testing.T, registry, registrar []byte) {
		w := &WHOIS{Server: "registry.test:43", Timeout: time.Second, MaxBytes: 64 << 10, dial: memoryWHOIS(registry, registrar)}
		reg := w.Lookup(context.Background(), "x.com")
		switch reg.State {
		case watcher.Found, watcher.NotFound:
		case watcher.Unknown:
			if reg.Reason == "" {
				t.Fatal("unknown without a reason")
			}
		default:
			t.Fatalf("state %q", reg.State)
		}
		for _, s := range append([]string{reg.Registrar, reg.AbuseEmail, reg.AbusePhone, reg.RegistrarIANAID, reg.Reason, reg.Server}, reg.Statuses...) {
			for _, r := range s {
				if watcher.Unsafe(r) {
					t.Fatalf("unsafe character %U in %q", r, s)
				}
			}
		}
	})
}
