// Package ctgen makes synthetic Certificate Transparency traffic for tests and benchmarks:
// names shaped like the stream (mostly innocent, about one in twenty a printer look-alike) and
// certstream messages carrying them, in the Python server's full format. It is deterministic,
// so figures measured on it can be compared from one change to the next.
package ctgen

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Names returns n names shaped like a Certificate Transparency stream: mostly innocent
// (company and product words, hosting prefixes, hashed host names, many TLDs) with about one in
// twenty a printer look-alike, as the benchmarks and the throughput figures assume.
func Names(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields(`shop cloud data smart home garden auto city news blog tech media group
		design studio health care dental law travel hotel pizza coffee market trade finance bank
		secure pay mobile app games sport music photo video art print green blue star sun moon
		north river lake park valley mountain family kids school academy energy solar water fire
		build construct realty homes farm food fresh organic pet vet fit yoga beauty hair nails
		fashion style wear shoes bike car motor parts repair service plus pro one best top first`)
	prefixes := []string{"www", "mail", "api", "cdn", "dev", "staging", "app", "portal", "vpn", "autodiscover", "cpanel", "webmail"}
	tlds := []string{"com", "net", "org", "de", "co.uk", "io", "fr", "nl", "com.br", "ru", "xyz", "online", "shop", "app", "dev", "info", "com.au", "jp"}
	scams := []string{"hpprintersupportnumbers.com", "123-hp-setup.net", "ijstartcanon.store", "epson-printer-offline.com",
		"brotherprintersupport.co", "lexmrak.com", "cann0n-support.online", "xn--p-support-p3i.com", "canon.net", "hp.com-support.help"}
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		if i%20 == 19 {
			out = append(out, scams[r.IntN(len(scams))])
			continue
		}
		var b strings.Builder
		switch r.IntN(4) {
		case 0:
			b.WriteString(prefixes[r.IntN(len(prefixes))])
			b.WriteByte('.')
		case 1:
			fmt.Fprintf(&b, "%x.", r.Uint32())
		}
		b.WriteString(words[r.IntN(len(words))])
		if r.IntN(2) == 0 {
			if r.IntN(3) == 0 {
				b.WriteByte('-')
			}
			b.WriteString(words[r.IntN(len(words))])
		}
		if r.IntN(5) == 0 {
			fmt.Fprintf(&b, "%d", r.IntN(100))
		}
		b.WriteByte('.')
		b.WriteString(tlds[r.IntN(len(tlds))])
		out = append(out, b.String())
	}
	return out
}
