// Package ctlogtest runs Certificate Transparency logs in-process for tests: RFC 6962 and
// static-ct-api logs on 127.0.0.1 with real keys, signed tree heads and checkpoints, Merkle
// trees that grow while watched, and the certificates and precertificates (with the CT poison
// extension) of a throwaway CA. Faults are injected with a hook on the log's HTTP handler.
package ctlogtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"math/big"
	"sync/atomic"
	"time"

	ctx509 "github.com/google/certificate-transparency-go/x509"

	"github.com/helpwatch/helpwatch/watcher/ctgen"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CA is a throwaway certificate authority.
type CA struct {
	Key  *ecdsa.PrivateKey
	Cert *x509.Certificate
	// KeyHash is the SHA-256 of the CA's SubjectPublicKeyInfo: a precert entry's issuer_key_hash.
	KeyHash [32]byte
	serial  atomic.Int64
}

// NewCA makes a CA named "Helpwatch Test CA".
func NewCA() *CA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"Helpwatch Test"}, CommonName: "Helpwatch Test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{Key: key, Cert: cert, KeyHash: sha256.Sum256(cert.RawSubjectPublicKeyInfo)}
	ca.serial.Store(1000)
	return ca
}

var oidPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}

func (ca *CA) template(names []string) *x509.Certificate {
	t := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		NotBefore:    time.Now().Add(-time.Minute).Truncate(time.Second),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second),
		DNSNames:     names,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if len(names) > 0 {
		t.Subject.CommonName = names[0]
	}
	return t
}

var leafKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

// Certificate issues a certificate for names (the first is also the subject CN).
func (ca *CA) Certificate(names ...string) []byte {
	der, err := x509.CreateCertificate(rand.Reader, ca.template(names), ca.Cert, &leafKey.PublicKey, ca.Key)
	if err != nil {
		panic(err)
	}
	return der
}

// Precertificate issues a precertificate for names and returns it with the TBS certificate as
// a log records it: the poison extension removed.
func (ca *CA) Precertificate(names ...string) (precert, tbs []byte) {
	t := ca.template(names)
	t.ExtraExtensions = []pkix.Extension{{Id: oidPoison, Critical: true, Value: []byte{0x05, 0x00}}}
	der, err := x509.CreateCertificate(rand.Reader, t, ca.Cert, &leafKey.PublicKey, ca.Key)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	tbs, err = ctx509.RemoveCTPoison(cert.RawTBSCertificate)
	if err != nil {
		panic(err)
	}
	return der, tbs
}

// Entry is one log entry: a certificate or a precertificate's TBS.
type Entry struct {
	Timestamp time.Time
	Precert   bool
	// Cert is the certificate (x509 entry) or the TBS certificate (precert entry).
	Cert []byte
	// PreCert is the precertificate itself (static-ct-api data tiles carry it).
	PreCert []byte
	KeyHash [32]byte
	// Raw, when set, is the TimestampedEntry as written, whatever the fields say: for hostile
	// entries.
	Raw []byte
	// RawTail, with Raw, is what follows it in a data tile (default: an empty chain).
	RawTail []byte
}

// CertEntry is an x509 entry for names.
func (ca *CA) CertEntry(names ...string) Entry {
	return Entry{Timestamp: time.Now(), Cert: ca.Certificate(names...)}
}

// PrecertEntry is a precert entry for names.
func (ca *CA) PrecertEntry(names ...string) Entry {
	pre, tbs := ca.Precertificate(names...)
	return Entry{Timestamp: time.Now(), Precert: true, Cert: tbs, PreCert: pre, KeyHash: ca.KeyHash}
}

// TimestampedEntry is the RFC 6962 TimestampedEntry (no extensions).
func (e Entry) TimestampedEntry() []byte {
	if e.Raw != nil {
		return e.Raw
	}
	var b cryptobyte.Builder
	b.AddUint64(uint64(e.Timestamp.UnixMilli()))
	if e.Precert {
		b.AddUint16(1)
		b.AddBytes(e.KeyHash[:])
	} else {
		b.AddUint16(0)
	}
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Cert) })
	b.AddUint16LengthPrefixed(func(*cryptobyte.Builder) {})
	return b.BytesOrPanic()
}

// MerkleTreeLeaf is the leaf_input get-entries returns: version v1, timestamped_entry, the entry.
func (e Entry) MerkleTreeLeaf() []byte {
	return append([]byte{0, 0}, e.TimestampedEntry()...)
}

// TileLeaf is the entry as a static-ct-api data tile holds it: the TimestampedEntry, the
// precertificate for precert entries, and the chain's fingerprints (none here).
func (e Entry) TileLeaf() []byte {
	out := e.TimestampedEntry()
	if e.Raw != nil {
		if e.RawTail != nil {
			return append(out, e.RawTail...)
		}
		return append(out, 0, 0)
	}
	var b cryptobyte.Builder
	if e.Precert {
		b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.PreCert) })
	}
	b.AddUint16LengthPrefixed(func(*cryptobyte.Builder) {})
	return append(out, b.BytesOrPanic()...)
}

// UnknownTypeEntry is a TimestampedEntry of an entry type RFC 6962 does not define, its
// body any bytes: a hostile log's.
func UnknownTypeEntry(typ uint16, body []byte) Entry {
	var b cryptobyte.Builder
	b.AddUint64(uint64(time.Now().UnixMilli()))
	b.AddUint16(typ)
	b.AddBytes(body)
	b.AddUint16LengthPrefixed(func(*cryptobyte.Builder) {})
	return Entry{Timestamp: time.Now(), Raw: b.BytesOrPanic()}
}

// TBS builds a TBS certificate directly, without a signature: fast enough to fill a log with
// a million distinct precertificate entries, and free to say what a real CA would not.
type TBS struct {
	Serial             uint64
	IssuerOrg, Issuer  string
	NotBefore, After   time.Time
	Subject            string
	Names              []string
	BMPIssuer          bool // encode the issuer CN as a BMPString
	SkipSubjectAltName bool
}

var spki = func() []byte {
	der, _ := x509.MarshalPKIXPublicKey(&leafKey.PublicKey)
	return der
}()

// DER encodes the TBS certificate.
func (t TBS) DER() []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(2) })
		var serial [9]byte
		binary.BigEndian.PutUint64(serial[1:], t.Serial)
		b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(serial[:]) })
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2})
		})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addAttr(b, asn1.ObjectIdentifier{2, 5, 4, 10}, t.IssuerOrg, false)
			addAttr(b, asn1.ObjectIdentifier{2, 5, 4, 3}, t.Issuer, t.BMPIssuer)
		})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addTime(b, t.NotBefore)
			addTime(b, t.After)
		})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			if t.Subject != "" {
				addAttr(b, asn1.ObjectIdentifier{2, 5, 4, 3}, t.Subject, false)
			}
		})
		b.AddBytes(spki)
		if t.SkipSubjectAltName {
			return
		}
		b.AddASN1(cbasn1.Tag(3).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{2, 5, 29, 17})
					b.AddASN1(cbasn1.OCTET_STRING, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							for _, n := range t.Names {
								b.AddASN1(cbasn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(n)) })
							}
						})
					})
				})
			})
		})
	})
	return b.BytesOrPanic()
}

// addTime writes a UTCTime, or a GeneralizedTime for years UTCTime cannot hold (as RFC 5280).
func addTime(b *cryptobyte.Builder, t time.Time) {
	if y := t.UTC().Year(); y < 1950 || y > 2049 {
		b.AddASN1GeneralizedTime(t.UTC())
		return
	}
	b.AddASN1UTCTime(t.UTC())
}

func addAttr(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, value string, bmp bool) {
	if value == "" {
		return
	}
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			if bmp {
				b.AddASN1(cbasn1.Tag(30), func(b *cryptobyte.Builder) {
					for _, r := range value {
						b.AddUint16(uint16(r))
					}
				})
				return
			}
			b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(value)) })
		})
	})
}

// TBSEntry is a precert entry holding t.
func TBSEntry(t TBS, ts time.Time) Entry {
	return Entry{Timestamp: ts, Precert: true, Cert: t.DER(), KeyHash: sha256.Sum256(spki)}
}

// StreamEntries makes n distinct precertificate entries named like the CT stream (ctgen's
// names: one in twenty a printer look-alike), with one to three names each, as Let's
// Encrypt's logs carry them. seed varies the serial numbers, so that several logs filled with
// it hold different entries.
func StreamEntries(n int, seed uint64) []Entry {
	names := ctgen.Names(n + 2)
	now := time.Now()
	out := make([]Entry, n)
	for i := range out {
		ns := []string{names[i]}
		switch i % 3 {
		case 1:
			ns = append(ns, "www."+names[i])
		case 2:
			ns = append(ns, "www."+names[i], "mail."+names[i])
		}
		out[i] = TBSEntry(TBS{Serial: seed<<32 | uint64(i) + 1, IssuerOrg: "Let's Encrypt", Issuer: "R13",
			NotBefore: now.Add(-time.Hour), After: now.Add(90 * 24 * time.Hour), Subject: names[i], Names: ns}, now)
	}
	return out
}
