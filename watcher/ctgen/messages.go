package ctgen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
)

// WriteMessages writes n certstream certificate_update messages, one per line, carrying the
// names of Names in order (every twentieth made unique): one to three per certificate (a name, its www. twin, or a wildcard),
// with the extensions, issuer and subject fields real messages have (about 1.5 KB each).
func WriteMessages(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	r := rand.New(rand.NewPCG(3, 4))
	names := Names(min(n, 200000))
	logs := [][2]string{
		{"Google 'Argon2026h2' log", "https://ct.googleapis.com/logs/us1/argon2026h2/"},
		{"Let's Encrypt 'Oak2026h2' log", "https://oak.ct.letsencrypt.org/2026h2/"},
		{"DigiCert 'Wyvern2026h2' Log", "https://wyvern.ct.digicert.com/2026h2/"},
		{"Sectigo 'Elephant2026h2'", "https://elephant2026h2.ct.sectigo.com/"},
	}
	var buf []byte
	seen := 1795777200.0
	for i := 0; i < n; i++ {
		// Past the base list, names repeat with a numeric twist so the stream keeps new names.
		name := names[i%len(names)]
		switch {
		case i%20 == 19:
			// Look-alikes get a serial so each is a new finding: about 5% of messages, far more
			// than the real stream has, so the store's share of the work is not understated.
			name = strconv.Itoa(i) + "-" + name
		case i >= len(names):
			name = strconv.Itoa(i/len(names)) + "-" + name
		}
		all := []string{name}
		switch r.IntN(3) {
		case 0:
			all = append(all, "www."+name)
		case 1:
			all = []string{"*." + name, name}
		}
		lg := logs[r.IntN(len(logs))]
		idx := 100000000 + i*3
		seen += r.Float64() * 0.01
		nb := int64(seen) - 3600
		buf = buf[:0]
		buf = append(buf, `{"data":{"cert_index":`...)
		buf = strconv.AppendInt(buf, int64(idx), 10)
		buf = append(buf, `,"cert_link":"`...)
		buf = append(buf, lg[1]...)
		buf = fmt.Appendf(buf, `ct/v1/get-entries?start=%d&end=%d","leaf_cert":{"all_domains":[`, idx, idx)
		for j, d := range all {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendQuote(buf, d)
		}
		buf = append(buf, `],"extensions":{"authorityInfoAccess":"CA Issuers - URI:http://r11.i.lencr.org/\nOCSP - URI:http://r11.o.lencr.org\n","authorityKeyIdentifier":"keyid:C5:CF:46:A4:EA:F4:C3:C0:7A:6C:95:C4:2D:B0:5E:92:2F:26:E3:B9\n","basicConstraints":"CA:FALSE","certificatePolicies":"Policy: 2.23.140.1.2.1","ctlPoisonByte":true,"extendedKeyUsage":"TLS Web server authentication, TLS Web client authentication","keyUsage":"Digital Signature, Key Encipherment","subjectAltName":"`...)
		for j, d := range all {
			if j > 0 {
				buf = append(buf, ", "...)
			}
			buf = append(buf, "DNS:"...)
			buf = append(buf, d...)
		}
		buf = append(buf, `","subjectKeyIdentifier":"`...)
		buf = hexColon(buf, r, 20)
		buf = append(buf, `"},"fingerprint":"`...)
		buf = hexColon(buf, r, 20)
		buf = fmt.Appendf(buf, `","issuer":{"C":"US","CN":"R11","L":null,"O":"Let's Encrypt","OU":null,"ST":null,"aggregated":"/C=US/CN=R11/O=Let's Encrypt","emailAddress":null},"not_after":%d,"not_before":%d,"serial_number":"`, nb+7776000, nb)
		buf = fmt.Appendf(buf, "%016X%016X", r.Uint64(), r.Uint64())
		buf = append(buf, `","signature_algorithm":"sha256, rsa","subject":{"C":null,"CN":`...)
		buf = strconv.AppendQuote(buf, all[0])
		buf = append(buf, `,"L":null,"O":null,"OU":null,"ST":null,"aggregated":`...)
		buf = strconv.AppendQuote(buf, "/CN="+all[0])
		buf = append(buf, `,"emailAddress":null}},"seen":`...)
		buf = strconv.AppendFloat(buf, seen, 'f', 6, 64)
		buf = fmt.Appendf(buf, `,"source":{"name":%q,"url":%q},"update_type":"PrecertLogEntry"},"message_type":"certificate_update"}`, lg[0], lg[1])
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func hexColon(b []byte, r *rand.Rand, n int) []byte {
	const digits = "0123456789ABCDEF"
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ':')
		}
		v := r.IntN(256)
		b = append(b, digits[v>>4], digits[v&15])
	}
	return b
}
