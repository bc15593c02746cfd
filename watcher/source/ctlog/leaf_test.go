package ctlog_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/watcher/source/ctlog"
	"github.com/helpwatch/helpwatch/watcher/source/ctlog/ctlogtest"
)

func TestParsesCertificatesAndPrecertificatesLikeCryptoX509(t *testing.T) {
	ca := ctlogtest.NewCA()
	names := []string{"hp-printer-setup.example", "www.hp-printer-setup.example", "*.hp-printer-setup.example"}
	x := ca.CertEntry(names...)
	p := ca.PrecertEntry(names...)
	for _, tc := range []struct {
		name  string
		entry ctlogtest.Entry
	}{{"x509", x}, {"precert", p}} {
		t.Run(tc.name, func(t *testing.T) {
			e, hash, err := ctlog.ParseMerkleTreeLeaf(42, tc.entry.MerkleTreeLeaf())
			if err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(append([]byte{0}, tc.entry.MerkleTreeLeaf()...)); hash != want {
				t.Error("leaf hash is not SHA-256(0x00 || leaf)")
			}
			var ref *x509.Certificate
			if tc.entry.Precert {
				ref, err = x509.ParseCertificate(tc.entry.PreCert)
			} else {
				ref, err = x509.ParseCertificate(tc.entry.Cert)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(e.Names, ref.DNSNames) {
				t.Errorf("names %v, want %v (the CN is among them)", e.Names, ref.DNSNames)
			}
			if e.Serial != hex.EncodeToString(ref.SerialNumber.Bytes()) {
				t.Errorf("serial %s, want %x", e.Serial, ref.SerialNumber.Bytes())
			}
			if e.Issuer != "Helpwatch Test Helpwatch Test CA" || !e.NotBefore.Equal(ref.NotBefore) || !e.NotAfter.Equal(ref.NotAfter) {
				t.Errorf("issuer %q, validity %s to %s; want %s to %s", e.Issuer, e.NotBefore, e.NotAfter, ref.NotBefore, ref.NotAfter)
			}
			if e.Index != 42 || e.Precert != tc.entry.Precert || e.Timestamp.UnixMilli() != tc.entry.Timestamp.UnixMilli() {
				t.Errorf("entry %+v", e)
			}
			// The same entry in a data tile: same entry, same hash.
			te, th, rest, err := ctlog.CutTileLeaf(42, append(tc.entry.TileLeaf(), 0xff))
			if err != nil || th != hash || len(rest) != 1 || !slices.Equal(te.Names, e.Names) || te.Fingerprint != e.Fingerprint {
				t.Errorf("tile leaf: %+v %v rest %d", te, err, len(rest))
			}
		})
	}
}

func TestSubjectCNOnlyAndOddStrings(t *testing.T) {
	tbs := ctlogtest.TBS{Serial: 9, Issuer: "Ünïcode CA", BMPIssuer: true, Subject: "canon-ij-setup.example",
		NotBefore: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), After: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC), SkipSubjectAltName: true}
	e, _, err := ctlog.ParseMerkleTreeLeaf(1, ctlogtest.TBSEntry(tbs, time.Now()).MerkleTreeLeaf())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.Names, []string{"canon-ij-setup.example"}) || e.Issuer != "Ünïcode CA" || !e.NotAfter.Equal(tbs.After) || !e.NotBefore.Equal(tbs.NotBefore) {
		t.Errorf("%+v", e)
	}
	// After 2049 RFC 5280 switches to GeneralizedTime.
	tbs.After = time.Date(2051, 7, 4, 5, 6, 7, 0, time.UTC)
	e, _, err = ctlog.ParseMerkleTreeLeaf(1, ctlogtest.TBSEntry(tbs, time.Now()).MerkleTreeLeaf())
	if err != nil || !e.NotAfter.Equal(tbs.After) {
		t.Errorf("GeneralizedTime read as %v (%v)", e.NotAfter, err)
	}
}

// FuzzParseMerkleTreeLeaf feeds get-entries leaves a hostile log could send: no panic, bounded
// output, and an entry only when there is no error.
func FuzzParseMerkleTreeLeaf(f *testing.F) {
	for _, seed := range leafSeeds(f) {
		f.Add(seed.MerkleTreeLeaf())
	}
	f.Fuzz(func(t *testing.T, leaf []byte) {
		e, _, err := ctlog.ParseMerkleTreeLeaf(0, leaf)
		if err == nil && e == nil {
			t.Fatal("no entry and no error")
		}
		if e != nil && len(e.Names) > ctlog.MaxNamesPerEntry {
			t.Fatalf("%d names", len(e.Names))
		}
	})
}

// FuzzCutTileLeaf feeds data tiles: the rest is always a suffix of the input, so a loop over a
// tile always ends.
func FuzzCutTileLeaf(f *testing.F) {
	for _, seed := range leafSeeds(f) {
		f.Add(append(seed.TileLeaf(), seed.TileLeaf()...))
	}
	f.Fuzz(func(t *testing.T, tile []byte) {
		for i := 0; len(tile) > 0; i++ {
			e, _, rest, err := ctlog.CutTileLeaf(int64(i), tile)
			if rest == nil {
				if err == nil {
					t.Fatal("broken framing without an error")
				}
				return
			}
			if len(rest) >= len(tile) {
				t.Fatal("no progress")
			}
			if e != nil && len(e.Names) > ctlog.MaxNamesPerEntry {
				t.Fatalf("%d names", len(e.Names))
			}
			tile = rest
		}
	})
}

func leafSeeds(f *testing.F) []ctlogtest.Entry {
	ca := ctlogtest.NewCA()
	seeds := []ctlogtest.Entry{ca.CertEntry("a.example", "b.example"), ca.PrecertEntry("hp-support.example"),
		ctlogtest.TBSEntry(ctlogtest.TBS{Serial: 1, Issuer: "x", BMPIssuer: true, Names: []string{"x.example"}}, time.Now())}
	// The committed corpus (testdata/fuzz) holds real-shaped leaves too; writing it again is
	// a manual step: HELPWATCH_WRITE_FUZZ_SEEDS=1 go test -run '^$' -fuzz ... -fuzztime 1x.
	if os.Getenv("HELPWATCH_WRITE_FUZZ_SEEDS") != "" {
		for i, s := range seeds {
			for name, data := range map[string][]byte{"FuzzParseMerkleTreeLeaf": s.MerkleTreeLeaf(), "FuzzCutTileLeaf": s.TileLeaf()} {
				dir := filepath.Join("testdata", "fuzz", name)
				os.MkdirAll(dir, 0o755)
				content := "go test fuzz v1\n[]byte(" + quoteBytes(data) + ")\n"
				os.WriteFile(filepath.Join(dir, "seed"+string(rune('0'+i))), []byte(content), 0o644)
			}
		}
	}
	return seeds
}

func quoteBytes(b []byte) string {
	const hexdigits = "0123456789abcdef"
	out := []byte{'"'}
	for _, c := range b {
		out = append(out, '\\', 'x', hexdigits[c>>4], hexdigits[c&15])
	}
	return string(append(out, '"'))
}
