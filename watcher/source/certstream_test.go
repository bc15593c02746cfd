package source

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

func decode(t *testing.T, frame string) (*watcher.Event, MessageKind) {
	t.Helper()
	ev := &watcher.Event{}
	kind, err := DecodeMessage([]byte(frame), ev)
	if err != nil {
		t.Fatalf("DecodeMessage(%.60q): %v", frame, err)
	}
	return ev, kind
}

func TestDecodeServerVariants(t *testing.T) {
	// Python server: float times, emailAddress, data before message_type.
	py := `{"data":{"cert_index":328350759,"cert_link":"http://ct.googleapis.com/logs/xenon2021/ct/v1/get-entries?start=328350759&end=328350759",
	 "leaf_cert":{"all_domains":["hp-printer-setup.com","www.hp-printer-setup.com"],"extensions":{"subjectAltName":"DNS:x"},
	 "fingerprint":"B7:85:23","issuer":{"C":"US","CN":"R3","O":"Let's Encrypt","aggregated":"/C=US/CN=R3/O=Let's Encrypt","emailAddress":null},
	 "not_after":1615788077.0,"not_before":1608012077.0,"subject":{"CN":"hp-printer-setup.com"}},
	 "seen":1608015749.386019,"source":{"name":"Google 'Xenon2021' log","url":"ct.googleapis.com/logs/xenon2021/"},"update_type":"X509LogEntry"},
	 "message_type":"certificate_update"}`
	ev, kind := decode(t, py)
	if kind != KindCertificate || len(ev.Names) != 2 || ev.Names[0] != "hp-printer-setup.com" {
		t.Fatalf("python variant: kind %v names %v", kind, ev.Names)
	}
	if ev.Cert.Index != 328350759 || ev.Cert.Fingerprint != "B7:85:23" || ev.Cert.Issuer != "Let's Encrypt R3" ||
		ev.Cert.LogURL != "ct.googleapis.com/logs/xenon2021/" || ev.Cert.LogName != "Google 'Xenon2021' log" {
		t.Errorf("python variant cert: %+v", ev.Cert)
	}
	if got := ev.Seen.UnixMilli(); got != 1608015749386 {
		t.Errorf("seen %d, want 1608015749386", got)
	}
	if !ev.Cert.NotBefore.Equal(time.Unix(1608012077, 0)) {
		t.Errorf("not_before %v", ev.Cert.NotBefore)
	}

	// certstream-server-go: integer times, email_address, empty cert_link, is_ca.
	goServer := `{"message_type":"certificate_update","data":{"cert_index":712420366,"cert_link":"",
	 "leaf_cert":{"all_domains":["canon-ij-setup.net"],"fingerprint":"27:58","sha256":"57:61","not_after":1667028404,"not_before":1659252405,
	 "issuer":{"CN":"R3","O":"Let's Encrypt","email_address":null},"is_ca":false},"seen":1659301203.904,
	 "source":{"name":"DigiCert Yeti2022-2 Log","url":"https://yeti2022-2.ct.digicert.com/log"},"update_type":"PrecertLogEntry"}}`
	ev, kind = decode(t, goServer)
	if kind != KindCertificate || len(ev.Names) != 1 || ev.Cert.Link != "" || ev.Cert.Index != 712420366 {
		t.Fatalf("go server variant: %v %+v", kind, ev)
	}

	// domains-only, both shapes.
	ev, kind = decode(t, `{"message_type":"dns_entries","data":["a.example","*.b.example"]}`)
	if kind != KindNames || strings.Join(ev.Names, ",") != "a.example,*.b.example" || ev.Cert.Known() {
		t.Fatalf("dns_entries list: %v %+v", kind, ev)
	}
	ev, kind = decode(t, `{"message_type":"dns_entries","data":{"cert_index":5,"domains":["c.example"],"source":{"url":"log.example/"}}}`)
	if kind != KindNames || len(ev.Names) != 1 || ev.Cert.Index != 5 {
		t.Fatalf("dns_entries object: %v %+v", kind, ev)
	}

	// heartbeat and unknown types.
	if _, kind = decode(t, `{"message_type":"heartbeat","timestamp":1700000000.5}`); kind != KindHeartbeat {
		t.Errorf("heartbeat decoded as %v", kind)
	}
	if _, kind = decode(t, `{"message_type":"something_new","data":{"x":[1,2,{"y":null}]}}`); kind != KindOther {
		t.Errorf("unknown type decoded as %v", kind)
	}

	// No all_domains: fall back to the subject CN.
	ev, _ = decode(t, `{"message_type":"certificate_update","data":{"leaf_cert":{"subject":{"CN":"epson-support.org"}}}}`)
	if len(ev.Names) != 1 || ev.Names[0] != "epson-support.org" || ev.Cert.Index != -1 {
		t.Errorf("subject fallback: %+v", ev)
	}

	// Escapes in names are decoded, including surrogate pairs.
	ev, _ = decode(t, `{"message_type":"dns_entries","data":["hp\u002ecom","\ud83d\ude00.example","a\/b"]}`)
	if ev.Names[0] != "hp.com" || ev.Names[1] != "😀.example" || ev.Names[2] != "a/b" {
		t.Errorf("escapes: %q", ev.Names)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for _, frame := range []string{
		``,
		`not json`,
		`[1,2,3]`,
		`{"message_type":"certificate_update"}`,
		`{"data":{"leaf_cert":{"all_domains":["a.com"]}}}`,
		`{"message_type":"dns_entries","data":["a.com",]}`,
		`{"message_type":"dns_entries","data":["a.com" "b.com"]}`,
		`{"message_type":"dns_entries","data":[1]}`,
		`{"message_type":"heartbeat"} trailing`,
		`{"message_type":"x","data":{"a":[}}`,
		`{"message_type":"x","data":{"a":{"b":1,}}}`,
		`{"message_type":"x","data":{"a":["b":1]}}`,
		`{"message_type":"dns_entries","data":["\x"]}`,
		`{"message_type":"dns_entries","data":["\u12"]}`,
		`{"message_type":"x","data":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
		`{"message_type":"x","data":` + strings.Repeat("[", 1000000),
		`{"message_type":"dns_entries","data":["unterminated`,
	} {
		ev := &watcher.Event{}
		if kind, err := DecodeMessage([]byte(frame), ev); err == nil {
			t.Errorf("DecodeMessage(%.50q) = %v, nil; want an error", frame, kind)
		}
	}
}

func TestDecodeBoundsNames(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"message_type":"dns_entries","data":[`)
	for i := 0; i < MaxNamesPerMessage+50; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"n.example"`)
	}
	b.WriteString(`,"` + strings.Repeat("a", 400) + `"]}`)
	ev, _ := decode(t, b.String())
	if len(ev.Names) != MaxNamesPerMessage {
		t.Errorf("kept %d names, want the limit %d", len(ev.Names), MaxNamesPerMessage)
	}
}

// The decoder must agree with encoding/json on every field it reads from the real samples.
func TestDecodeSharedSamples(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "data", "certstream_samples.jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("shared data not available (%v); skipping the real-sample check", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		var ref struct {
			Data struct {
				CertIndex int64 `json:"cert_index"`
				Leaf      struct {
					AllDomains  []string `json:"all_domains"`
					Fingerprint string   `json:"fingerprint"`
				} `json:"leaf_cert"`
				Source struct {
					URL string `json:"url"`
				} `json:"source"`
			} `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ref); err != nil {
			t.Fatalf("sample %d: %v", n, err)
		}
		ev := &watcher.Event{}
		kind, err := DecodeMessage(sc.Bytes(), ev)
		if err != nil || kind != KindCertificate {
			t.Fatalf("sample %d: kind %v err %v", n, kind, err)
		}
		if strings.Join(ev.Names, " ") != strings.Join(ref.Data.Leaf.AllDomains, " ") ||
			ev.Cert.Fingerprint != ref.Data.Leaf.Fingerprint || ev.Cert.LogURL != ref.Data.Source.URL {
			t.Errorf("sample %d: got %v %+v, want %v", n, ev.Names, ev.Cert, ref.Data.Leaf.AllDomains)
		}
		if ref.Data.CertIndex != 0 && ev.Cert.Index != ref.Data.CertIndex {
			t.Errorf("sample %d: index %d, want %d", n, ev.Cert.Index, ref.Data.CertIndex)
		}
	}
	if n == 0 {
		t.Fatal("no samples read")
	}
}

// FuzzDecodeMessage: hostile frames never panic, and whatever decodes respects the bounds and
// agrees with encoding/json about whether the frame is JSON at all.
func FuzzDecodeMessage(f *testing.F) {
	for _, seed := range []string{
		`{"message_type":"heartbeat","timestamp":1.5}`,
		`{"message_type":"dns_entries","data":["a.com","b\u0041.com"]}`,
		`{"message_type":"certificate_update","data":{"cert_index":1,"leaf_cert":{"all_domains":["hp.com"],"issuer":{"O":"x","CN":"y"},"not_before":1.0},"seen":2,"source":{"url":"u","name":"n"}}}`,
		`{"message_type":"x","data":{"a":[{"b":[true,false,null,-1.5e3]}]}}`,
		`[`, `{"a":"\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		ev := &watcher.Event{}
		_, err := DecodeMessage(frame, ev)
		if len(ev.Names) > MaxNamesPerMessage {
			t.Fatalf("%d names", len(ev.Names))
		}
		for _, n := range ev.Names {
			if len(n) > maxNameBytes || n == "" {
				t.Fatalf("name %q kept", n)
			}
		}
		if err == nil && !json.Valid(frame) {
			t.Fatalf("accepted invalid JSON %q", frame)
		}
	})
}
