// Package enrichtest runs local stand-ins for the servers enrichment talks to (a DNS resolver,
// RDAP and WHOIS servers), all on 127.0.0.1, for tests of the enrich package and the commands.
package enrichtest

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Local stand-ins for the outside world, all on 127.0.0.1.

// dnsServer answers from a zone map; it counts queries per "TYPE name" and can be told to
// truncate over UDP, fail or stay silent for chosen names.
type DNSServer struct {
	Addr     string
	mu       sync.Mutex
	counts   map[string]int
	records  map[string][]dns.RR // "TYPE name." -> answer
	Wildcard map[string]string   // zone -> address every name under it resolves to
	Truncate map[string]bool     // names answered with TC over UDP
	ServFail map[string]bool
	Silent   map[string]bool
	Delay    time.Duration
}

func StartDNS(t testing.TB) *DNSServer {
	t.Helper()
	s := &DNSServer{counts: map[string]int{}, records: map[string][]dns.RR{}, Wildcard: map[string]string{},
		Truncate: map[string]bool{}, ServFail: map[string]bool{}, Silent: map[string]bool{}}
	// UDP and TCP on the same port, as a resolver has; another process may hold the TCP port
	// next to a fresh UDP one, so try a few.
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ln == nil; attempt++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err != nil {
			pc.Close()
			if attempt == 20 {
				t.Fatalf("no port free for both UDP and TCP: %v", err)
			}
		}
	}
	s.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: s.handler("udp")}
	tcp := &dns.Server{Listener: ln, Handler: s.handler("tcp")}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return s
}

func (s *DNSServer) Add(rr string) {
	r, err := dns.NewRR(rr)
	if err != nil {
		panic(err)
	}
	key := dns.TypeToString[r.Header().Rrtype] + " " + strings.ToLower(r.Header().Name)
	s.mu.Lock()
	s.records[key] = append(s.records[key], r)
	s.mu.Unlock()
}

// configure changes the server's behaviour under its lock (handlers read it concurrently).
func (s *DNSServer) Configure(f func(s *DNSServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *DNSServer) Count(qtype, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[qtype+" "+dns.Fqdn(name)]
}

func (s *DNSServer) handler(network string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		key := dns.TypeToString[q.Qtype] + " " + name
		s.mu.Lock()
		s.counts[key]++
		delay := s.Delay
		silent, fail, trunc := s.Silent[name], s.ServFail[name], s.Truncate[name]
		answer := append([]dns.RR(nil), s.records[key]...)
		known := false
		for k := range s.records {
			if strings.HasSuffix(k, " "+name) {
				known = true
			}
		}
		for zone, addr := range s.Wildcard {
			if strings.HasSuffix(name, "."+zone) {
				known = true
				if q.Qtype == dns.TypeA && len(answer) == 0 {
					rr, _ := dns.NewRR(name + " 300 IN A " + addr)
					answer = append(answer, rr)
				}
			}
			if name == zone {
				known = true
			}
		}
		s.mu.Unlock()
		if silent {
			return
		}
		time.Sleep(delay)
		m := new(dns.Msg)
		m.SetReply(req)
		switch {
		case fail:
			m.Rcode = dns.RcodeServerFailure
		case trunc && network == "udp":
			m.Truncated = true
		case !known:
			m.Rcode = dns.RcodeNameError
		default:
			m.Answer = answer
		}
		w.WriteMsg(m)
	}
}

// whoisServer answers port-43 queries with answer(query); the reply text is written and the
// connection closed, unless hold is set (the server then stalls after writing).
type WHOISServer struct {
	Addr    string
	mu      sync.Mutex
	queries []time.Time
	answer  func(query string) (reply string, hold bool)
}

func StartWHOIS(t testing.TB, answer func(query string) (string, bool)) *WHOISServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &WHOISServer{Addr: ln.Addr().String(), answer: answer}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				s.mu.Lock()
				s.queries = append(s.queries, time.Now())
				s.mu.Unlock()
				reply, hold := s.answer(strings.TrimSpace(line))
				c.Write([]byte(reply))
				if hold {
					select {
					case <-done:
					case <-time.After(5 * time.Second):
					}
				}
			}()
		}
	}()
	return s
}

func (s *WHOISServer) Times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.queries...)
}

// rdapServer serves domain objects from a map; paths are /domain/NAME (registry) and
// /registrar/domain/NAME (the registrar's own RDAP, for related links).
type RDAPServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []time.Time
	handle   func(w http.ResponseWriter, r *http.Request)
}

func StartRDAP(t testing.TB, handle func(w http.ResponseWriter, r *http.Request)) *RDAPServer {
	t.Helper()
	s := &RDAPServer{handle: handle}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, time.Now())
		s.mu.Unlock()
		s.handle(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *RDAPServer) Times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.requests...)
}

// bootstrapFor is an IANA-format bootstrap file sending the given TLDs to base.
func BootstrapFor(base string, tlds ...string) []byte {
	quoted := make([]string, len(tlds))
	for i, t := range tlds {
		quoted[i] = `"` + t + `"`
	}
	return []byte(`{"version":"1.0","publication":"2026-11-27T00:00:00Z","services":[[[` + strings.Join(quoted, ",") + `],["` + base + `/"]]]}`)
}
