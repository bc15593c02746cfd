package ctlog

import (
	"crypto/sha256"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Entry types of RFC 6962 (LogEntryType).
const (
	x509Entry    = 0
	precertEntry = 1
)

// Limits on what one entry may make us keep. A log is not trusted with our memory: an entry
// with more names than any real certificate, or names longer than DNS allows, is cut.
const (
	// MaxNamesPerEntry bounds the names kept from one entry.
	MaxNamesPerEntry = 1000
	maxNameBytes     = 255 + 2
	maxEntryBytes    = 1 << 20 // one certificate or TBS
)

// Entry is what helpwatch takes from one log entry.
type Entry struct {
	Index     int64
	Timestamp time.Time // the log's timestamp of the entry
	Precert   bool
	Names     []string // SAN dNSNames, then the subject CN when it is not among them
	Issuer    string   // the issuer's organization and common name
	NotBefore time.Time
	NotAfter  time.Time
	Serial    string // hex
	// Fingerprint is the SHA-256 of the certificate, or of the TBS certificate for a
	// precertificate: the same precertificate logged in several logs has the same one.
	Fingerprint string
}

// errEntry marks entries that could not be read (the log's fault, or a hostile log).
var errEntry = errors.New("unreadable log entry")

// errUnknownType marks an entry type RFC 6962 does not define: its length cannot be known, so
// nothing after it in a data tile can be split either.
var errUnknownType = fmt.Errorf("%w: unknown entry type", errEntry)

func entryError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errEntry, fmt.Sprintf(format, args...))
}

// timestampedEntry reads an RFC 6962 TimestampedEntry from the front of b: the timestamp, the
// entry type, the certificate (x509_entry) or TBS certificate (precert_entry), and the
// remaining bytes after its extensions. n is the length of the TimestampedEntry itself.
func timestampedEntry(b []byte) (ts uint64, typ uint16, cert []byte, n int, err error) {
	s := cryptobyte.String(b)
	if !s.ReadUint64(&ts) || !s.ReadUint16(&typ) {
		return 0, 0, nil, 0, entryError("short timestamped entry")
	}
	switch typ {
	case x509Entry:
		if !s.ReadUint24LengthPrefixed((*cryptobyte.String)(&cert)) {
			return 0, 0, nil, 0, entryError("bad certificate length")
		}
	case precertEntry:
		var keyHash []byte
		if !s.ReadBytes(&keyHash, 32) || !s.ReadUint24LengthPrefixed((*cryptobyte.String)(&cert)) {
			return 0, 0, nil, 0, entryError("bad precertificate")
		}
	default:
		return 0, 0, nil, 0, fmt.Errorf("%w %d", errUnknownType, typ)
	}
	var ext cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&ext) {
		return 0, 0, nil, 0, entryError("bad extensions")
	}
	// A certificate longer than maxEntryBytes is framed (and hashed) all the same: it is in
	// the tree, and only its parsing (newEntry) refuses it.
	return ts, typ, cert, len(b) - len(s), nil
}

// leafHash is the RFC 6962 Merkle leaf hash of a TimestampedEntry: SHA-256 of 0x00 (leaf),
// version v1 (0x00), leaf type timestamped_entry (0x00), and the entry.
func leafHash(timestamped []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0, 0, 0})
	h.Write(timestamped)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ParseMerkleTreeLeaf reads an RFC 6962 get-entries leaf_input (MerkleTreeLeaf) and returns
// the entry and the leaf hash the tree is built from.
func ParseMerkleTreeLeaf(index int64, leaf []byte) (*Entry, [32]byte, error) {
	e, err := parseLeaf(index, leaf)
	var hash [32]byte
	if len(leaf) >= 2 {
		hash = leafHash(leaf[2:])
	}
	return e, hash, err
}

// parseLeaf is ParseMerkleTreeLeaf without the leaf hash (the reader hashes every leaf
// already, parsed or not).
func parseLeaf(index int64, leaf []byte) (*Entry, error) {
	if len(leaf) < 2 || leaf[0] != 0 || leaf[1] != 0 {
		return nil, entryError("not a v1 timestamped-entry leaf")
	}
	ts, typ, cert, n, err := timestampedEntry(leaf[2:])
	if err != nil {
		return nil, err
	}
	if 2+n != len(leaf) {
		return nil, entryError("%d bytes after the timestamped entry", len(leaf)-2-n)
	}
	e, err := newEntry(index, ts, typ, cert)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// tileLeaf is the framing of one static-ct-api TileLeaf: enough to hash it and to parse it.
type tileLeaf struct {
	ts   uint64
	typ  uint16
	cert []byte // the certificate, or the precertificate's TBS
	hash [32]byte
}

// splitTileLeaf cuts the next TileLeaf from a data tile. An error means the tile's framing is
// broken and nothing after this point can be split.
func splitTileLeaf(tile []byte) (tileLeaf, []byte, error) {
	ts, typ, cert, n, err := timestampedEntry(tile)
	if err != nil {
		return tileLeaf{}, nil, err
	}
	l := tileLeaf{ts: ts, typ: typ, cert: cert, hash: leafHash(tile[:n])}
	s := cryptobyte.String(tile[n:])
	if typ == precertEntry {
		var pre cryptobyte.String
		if !s.ReadUint24LengthPrefixed(&pre) {
			return tileLeaf{}, nil, entryError("bad pre_certificate")
		}
	}
	var chain cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&chain) || len(chain)%32 != 0 {
		return tileLeaf{}, nil, entryError("bad certificate_chain")
	}
	return l, []byte(s), nil
}

// CutTileLeaf splits the next static-ct-api TileLeaf from a data tile and parses it: the entry
// (nil when its certificate does not parse: err says why, and rest still goes on), the leaf
// hash, and the rest of the tile (nil when the framing is broken).
func CutTileLeaf(index int64, tile []byte) (e *Entry, hash [32]byte, rest []byte, err error) {
	l, rest, err := splitTileLeaf(tile)
	if err != nil {
		return nil, hash, nil, err
	}
	if rest == nil {
		rest = []byte{}
	}
	e, err = newEntry(index, l.ts, l.typ, l.cert)
	if err != nil {
		e = nil
	}
	return e, l.hash, rest, err
}

// newEntry reads the names and facts from a certificate (x509_entry) or a TBS certificate
// (precert_entry).
func newEntry(index int64, ts uint64, typ uint16, der []byte) (*Entry, error) {
	if len(der) > maxEntryBytes {
		return nil, entryError("certificate of %d bytes (more than %d are not read)", len(der), maxEntryBytes)
	}
	e := &Entry{Index: index, Timestamp: time.UnixMilli(int64(ts)).UTC(), Precert: typ == precertEntry}
	tbs := der
	if typ == x509Entry {
		// Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
		s := cryptobyte.String(der)
		var cert cryptobyte.String
		if !s.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1Element((*cryptobyte.String)(&tbs), cbasn1.SEQUENCE) {
			return nil, entryError("certificate is not DER")
		}
	}
	sum := sha256.Sum256(der) // the certificate, or the precertificate's TBS
	e.Fingerprint = hex.EncodeToString(sum[:])
	if err := readTBS(tbs, e); err != nil {
		return nil, err
	}
	return e, nil
}

var (
	oidCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidOrganization = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidSAN          = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// readTBS reads serial, issuer, validity, subject CN and SAN dNSNames from a TBSCertificate.
func readTBS(der []byte, e *Entry) error {
	s := cryptobyte.String(der)
	var tbs cryptobyte.String
	if !s.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return entryError("TBS certificate is not DER")
	}
	// version [0] EXPLICIT, optional
	if !tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return entryError("bad version")
	}
	var serial cryptobyte.String
	if !tbs.ReadASN1(&serial, cbasn1.INTEGER) {
		return entryError("bad serial number")
	}
	// DER puts a zero byte before a serial whose first bit is set; the number is without it.
	for len(serial) > 1 && serial[0] == 0 {
		serial = serial[1:]
	}
	e.Serial = hex.EncodeToString(serial)
	if !tbs.SkipASN1(cbasn1.SEQUENCE) { // signature algorithm
		return entryError("bad signature algorithm")
	}
	var issuer, validity, subject cryptobyte.String
	if !tbs.ReadASN1(&issuer, cbasn1.SEQUENCE) || !tbs.ReadASN1(&validity, cbasn1.SEQUENCE) || !tbs.ReadASN1(&subject, cbasn1.SEQUENCE) {
		return entryError("bad issuer, validity or subject")
	}
	org, cn := nameAttrs(issuer)
	switch {
	case org != "" && cn != "":
		e.Issuer = org + " " + cn
	case cn != "":
		e.Issuer = cn
	default:
		e.Issuer = org
	}
	e.NotBefore, e.NotAfter = readTime(&validity), readTime(&validity)
	_, subjectCN := nameAttrs(subject)
	if !tbs.SkipASN1(cbasn1.SEQUENCE) { // subjectPublicKeyInfo
		return entryError("bad public key")
	}
	tbs.SkipOptionalASN1(cbasn1.Tag(1).ContextSpecific())
	tbs.SkipOptionalASN1(cbasn1.Tag(2).ContextSpecific())
	var exts cryptobyte.String
	var hasExts bool
	if !tbs.ReadOptionalASN1(&exts, &hasExts, cbasn1.Tag(3).Constructed().ContextSpecific()) {
		return entryError("bad extensions")
	}
	if hasExts {
		var list cryptobyte.String
		if !exts.ReadASN1(&list, cbasn1.SEQUENCE) {
			return entryError("bad extension list")
		}
		for !list.Empty() {
			var ext cryptobyte.String
			var oid asn1.ObjectIdentifier
			if !list.ReadASN1(&ext, cbasn1.SEQUENCE) || !ext.ReadASN1ObjectIdentifier(&oid) {
				return entryError("bad extension")
			}
			if !oid.Equal(oidSAN) {
				continue
			}
			ext.SkipOptionalASN1(cbasn1.BOOLEAN)
			var value, names cryptobyte.String
			if !ext.ReadASN1(&value, cbasn1.OCTET_STRING) || !value.ReadASN1(&names, cbasn1.SEQUENCE) {
				return entryError("bad subject alternative names")
			}
			for !names.Empty() {
				var gn cryptobyte.String
				var tag cbasn1.Tag
				if !names.ReadAnyASN1(&gn, &tag) {
					return entryError("bad general name")
				}
				if tag == cbasn1.Tag(2).ContextSpecific() { // dNSName
					e.addName(string(gn))
				}
			}
		}
	}
	if subjectCN != "" && !contains(e.Names, subjectCN) {
		e.addName(subjectCN)
	}
	return nil
}

func (e *Entry) addName(n string) {
	if n != "" && len(n) <= maxNameBytes && len(e.Names) < MaxNamesPerEntry {
		e.Names = append(e.Names, n)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// nameAttrs reads the organization and common name of an X.501 Name (the last of each).
func nameAttrs(name cryptobyte.String) (org, cn string) {
	for !name.Empty() {
		var set cryptobyte.String
		if !name.ReadASN1(&set, cbasn1.SET) {
			return
		}
		for !set.Empty() {
			var atv cryptobyte.String
			var oid asn1.ObjectIdentifier
			if !set.ReadASN1(&atv, cbasn1.SEQUENCE) || !atv.ReadASN1ObjectIdentifier(&oid) {
				return
			}
			var value cryptobyte.String
			var tag cbasn1.Tag
			if !atv.ReadAnyASN1(&value, &tag) {
				return
			}
			text := directoryString(value, tag)
			switch {
			case oid.Equal(oidCommonName):
				cn = text
			case oid.Equal(oidOrganization):
				org = text
			}
		}
	}
	return
}

// directoryString decodes the string types of X.501 names; others are read as bytes (they are
// cleaned where the event is made).
func directoryString(v []byte, tag cbasn1.Tag) string {
	if len(v) > 1024 {
		v = v[:1024]
	}
	if tag == cbasn1.Tag(30) { // BMPString: UCS-2
		u := make([]uint16, 0, len(v)/2)
		for i := 0; i+1 < len(v); i += 2 {
			u = append(u, binary.BigEndian.Uint16(v[i:]))
		}
		return string(utf16.Decode(u))
	}
	return string(v)
}

// readTime reads a UTCTime or GeneralizedTime; zero when it is neither.
func readTime(s *cryptobyte.String) time.Time {
	var tag cbasn1.Tag
	var v cryptobyte.String
	if !s.ReadAnyASN1(&v, &tag) {
		return time.Time{}
	}
	// Certificates write the times one way (RFC 5280: YYMMDDHHMMSSZ until 2049, then
	// YYYYMMDDHHMMSSZ); reading those digits directly is most of the cost of an entry saved.
	switch {
	case tag == cbasn1.UTCTime && len(v) == 13 && v[12] == 'Z':
		if t, ok := digitsTime(v[:12], true); ok {
			return t
		}
	case tag == cbasn1.GeneralizedTime && len(v) == 15 && v[14] == 'Z':
		if t, ok := digitsTime(v[:14], false); ok {
			return t
		}
	}
	// Anything else: the general parser, which accepts what DER allows.
	var t time.Time
	var b cryptobyte.Builder
	b.AddASN1(tag, func(b *cryptobyte.Builder) { b.AddBytes(v) })
	raw := cryptobyte.String(b.BytesOrPanic())
	switch tag {
	case cbasn1.UTCTime:
		if raw.ReadASN1UTCTime(&t) {
			return t.UTC()
		}
	case cbasn1.GeneralizedTime:
		if raw.ReadASN1GeneralizedTime(&t) {
			return t.UTC()
		}
	}
	return time.Time{}
}

// digitsTime reads YYMMDDHHMMSS (short: UTCTime, 1950-2049) or YYYYMMDDHHMMSS.
func digitsTime(d []byte, short bool) (time.Time, bool) {
	for _, c := range d {
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
	}
	num := func(b []byte) int {
		n := 0
		for _, c := range b {
			n = n*10 + int(c-'0')
		}
		return n
	}
	var year int
	if short {
		year = num(d[:2]) + 1900
		if year < 1950 {
			year += 100
		}
		d = d[2:]
	} else {
		year = num(d[:4])
		d = d[4:]
	}
	month, day, hour, minute, sec := num(d[0:2]), num(d[2:4]), num(d[4:6]), num(d[6:8]), num(d[8:10])
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	// time.Date normalizes 2026-02-31 into March; a time that did not survive is not one.
	if t.Month() != time.Month(month) || t.Day() != day || t.Hour() != hour || t.Minute() != minute || t.Second() != sec {
		return time.Time{}, false
	}
	return t, true
}
