package enrich

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
type dnsServer struct {
	addr     string
	mu       sync.Mutex
	counts   map[string]int
	records  map[string][]dns.RR // "TYPE name." -> answer
	wildcard map[string]string   // zone -> address every name under it resolves to
	truncate map[string]bool     // names answered with TC over UDP
	servfail map[string]bool
	silent   map[string]bool
	delay    time.Duration
}

func startDNS(t testing.TB) *dnsServer {
	t.Helper()
	s := &dnsServer{counts: map[string]int{}, records: map[string][]dns.RR{}, wildcard: map[string]string{},
		truncate: map[string]bool{}, servfail: map[string]bool{}, silent: map[string]bool{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		t.Skipf("cannot listen on TCP %s next to UDP: %v", pc.LocalAddr(), err)
	}
	s.addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: s.handler("udp")}
	tcp := &dns.Server{Listener: ln, Handler: s.handler("tcp")}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return s
}

func (s *dnsServer) add(rr string) {
	r, err := dns.NewRR(rr)
	if err != nil {
		panic(err)
	}
	key := dns.TypeToString[r.Header().Rrtype] + " " + strings.ToLower(r.Header().Name)
	s.mu.Lock()
	s.records[key] = append(s.records[key], r)
	s.mu.Unlock()
}

func (s *dnsServer) count(qtype, name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[qtype+" "+dns.Fqdn(name)]
}

func (s *dnsServer) handler(network string) dns.HandlerFunc {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		key := dns.TypeToString[q.Qtype] + " " + name
		s.mu.Lock()
		s.counts[key]++
		delay := s.delay
		silent, fail, trunc := s.silent[name], s.servfail[name], s.truncate[name]
		answer := append([]dns.RR(nil), s.records[key]...)
		known := false
		for k := range s.records {
			if strings.HasSuffix(k, " "+name) {
				known = true
			}
		}
		for zone, addr := range s.wildcard {
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
type whoisServer struct {
	addr    string
	mu      sync.Mutex
	queries []time.Time
	answer  func(query string) (reply string, hold bool)
}

func startWHOIS(t testing.TB, answer func(query string) (string, bool)) *whoisServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &whoisServer{addr: ln.Addr().String(), answer: answer}
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

func (s *whoisServer) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.queries...)
}

// rdapServer serves domain objects from a map; paths are /domain/NAME (registry) and
// /registrar/domain/NAME (the registrar's own RDAP, for related links).
type rdapServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []time.Time
	handle   func(w http.ResponseWriter, r *http.Request)
}

func startRDAP(t testing.TB, handle func(w http.ResponseWriter, r *http.Request)) *rdapServer {
	t.Helper()
	s := &rdapServer{handle: handle}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, time.Now())
		s.mu.Unlock()
		s.handle(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *rdapServer) times() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.requests...)
}

// bootstrapFor is an IANA-format bootstrap file sending the given TLDs to base.
func bootstrapFor(base string, tlds ...string) []byte {
	quoted := make([]string, len(tlds))
	for i, t := range tlds {
		quoted[i] = `"` + t + `"`
	}
	return []byte(`{"version":"1.0","publication":"2026-11-27T00:00:00Z","services":[[[` + strings.Join(quoted, ",") + `],["` + base + `/"]]]}`)
}
