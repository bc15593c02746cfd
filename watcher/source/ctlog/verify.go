package ctlog

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	"golang.org/x/mod/sumdb/note"

	"filippo.io/torchwood"
)

// head is a verified tree head: its signature checked against the log's key.
type head struct {
	Size int64
	Root [32]byte
	Time time.Time
}

// ErrVerify marks what a log sent that does not verify: a bad signature, a tree that shrank
// or forked, entries that are not in the tree they claim. Nothing verified with it is read.
var ErrVerify = errors.New("verification failed")

func verifyError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrVerify, fmt.Sprintf(format, args...))
}

// newSTHVerifier parses the log's key (from the log list) into ct-go's verifier of
// TreeHeadSignatures, which both RFC 6962 STHs and static-ct-api checkpoints carry.
func newSTHVerifier(der []byte) (*ct.SignatureVerifier, error) {
	pk, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("log key: %w", err)
	}
	return ct.NewSignatureVerifier(pk)
}

// verifySTH checks an RFC 6962 TreeHeadSignature over (timestamp, size, root).
func verifySTH(v *ct.SignatureVerifier, ts uint64, size int64, root [32]byte, sig ct.DigitallySigned) error {
	sth := ct.SignedTreeHead{Version: ct.V1, TreeSize: uint64(size), Timestamp: ts, SHA256RootHash: root, TreeHeadSignature: sig}
	if err := v.VerifySTHSignature(sth); err != nil {
		return verifyError("tree head signature of size %d: %v", size, err)
	}
	return nil
}

// noteVerifier verifies static-ct-api checkpoint signatures (c2sp.org/static-ct-api, the
// RFC6962NoteSignature): the note key id is the first four bytes of SHA-256(origin, "\n",
// 0x05, log id), the signature a timestamp followed by a TLS DigitallySigned
// TreeHeadSignature over the checkpoint's size and root.
type noteVerifier struct {
	origin string
	hash   uint32
	v      *ct.SignatureVerifier
	key    []byte
	// pinned: the origin was verified in a checkpoint; it may not change after that.
	pinned bool
}

func newNoteVerifier(origin string, key []byte) (*noteVerifier, error) {
	v, err := newSTHVerifier(key)
	if err != nil {
		return nil, err
	}
	return &noteVerifier{origin: origin, hash: NoteKeyHash(origin, key), v: v, key: key}, nil
}

// withOrigin is the same key under another origin.
func (n *noteVerifier) withOrigin(origin string) *noteVerifier {
	return &noteVerifier{origin: origin, hash: NoteKeyHash(origin, n.key), v: n.v, key: n.key}
}

// NoteKeyHash is the note key id of a static-ct-api log (exported for test logs).
func NoteKeyHash(origin string, key []byte) uint32 {
	logID := sha256.Sum256(key)
	h := sha256.New()
	h.Write([]byte(origin + "\n\x05"))
	h.Write(logID[:])
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func (n *noteVerifier) Name() string    { return n.origin }
func (n *noteVerifier) KeyHash() uint32 { return n.hash }

func (n *noteVerifier) Verify(msg, sig []byte) bool {
	ts, ds, ok := splitNoteSignature(sig)
	if !ok {
		return false
	}
	cp, err := torchwood.ParseCheckpoint(string(msg))
	if err != nil || cp.Origin != n.origin {
		return false
	}
	return verifySTH(n.v, ts, cp.N, cp.Hash, ds) == nil
}

func splitNoteSignature(sig []byte) (uint64, ct.DigitallySigned, bool) {
	var ds ct.DigitallySigned
	if len(sig) < 8+4 {
		return 0, ds, false
	}
	rest, err := cttls.Unmarshal(sig[8:], &ds)
	if err != nil || len(rest) != 0 {
		return 0, ds, false
	}
	return binary.BigEndian.Uint64(sig), ds, true
}

// maxCheckpointBytes bounds a checkpoint (the signed note of a static-ct-api log).
const maxCheckpointBytes = 16 << 10

// openCheckpoint verifies a checkpoint note and returns its tree head, and the verifier to use
// from now on. The origin is the checkpoint's first line: a log list gives only the submission
// URL, from which the origin is derived, and logs differ there (TesseraCT signs
// "host/path" without the port, for one). As certspotter does, a checkpoint whose first line
// names another origin is verified under that origin with the list's key: the signature covers
// the origin and the key id is derived from it, so only the log's key can sign it. Once one
// checkpoint verified, its origin is pinned.
func openCheckpoint(data []byte, v *noteVerifier) (head, *noteVerifier, error) {
	if len(data) > maxCheckpointBytes {
		return head{}, v, verifyError("checkpoint of %d bytes", len(data))
	}
	if first, _, ok := strings.Cut(string(data), "\n"); ok && first != v.origin && !v.pinned && first != "" && len(first) < 256 {
		if h, alt, err := openCheckpoint(data, v.withOrigin(first)); err == nil {
			return h, alt, nil
		}
	}
	n, err := note.Open(data, note.VerifierList(v))
	if err != nil {
		return head{}, v, verifyError("checkpoint signature: %v (%s)", err, signatureMismatch(data, v))
	}
	cp, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		return head{}, v, verifyError("checkpoint: %v", err)
	}
	if cp.Origin != v.origin {
		return head{}, v, verifyError("checkpoint origin %q, want %q", cp.Origin, v.origin)
	}
	var ts uint64
	for _, s := range n.Sigs {
		if s.Hash != v.hash {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil || len(raw) < 12 {
			continue
		}
		ts = binary.BigEndian.Uint64(raw[4:])
	}
	pinned := *v
	pinned.pinned = true
	return head{Size: cp.N, Root: cp.Hash, Time: time.UnixMilli(int64(ts)).UTC()}, &pinned, nil
}

// signatureMismatch says what a checkpoint that did not verify named and carried, against
// what was expected: the origin and the key id.
func signatureMismatch(data []byte, v *noteVerifier) string {
	text := string(data)
	first, _, _ := strings.Cut(text, "\n")
	var found []string
	if _, sigs, ok := strings.Cut(text, "\n\n"); ok {
		for _, line := range strings.Split(sigs, "\n") {
			// "— name base64(keyid || signature)"
			fields := strings.Fields(strings.TrimPrefix(line, "\u2014 "))
			if len(fields) != 2 {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(fields[1])
			if err != nil || len(raw) < 4 {
				continue
			}
			found = append(found, fmt.Sprintf("%q key id %08x", clipOrigin(fields[0]), binary.BigEndian.Uint32(raw)))
		}
	}
	if len(found) == 0 {
		found = append(found, "none")
	}
	return fmt.Sprintf("expected origin %q key id %08x from the log list's key (the checkpoint names origin %q, key id %08x under it); signatures found: %s",
		v.origin, v.hash, clipOrigin(first), NoteKeyHash(first, v.key), strings.Join(found, ", "))
}

func clipOrigin(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

// checkGrowth refuses a head that is older than the verified one: smaller (the tree shrank) or
// the same size with another root (a fork). Equal heads pass; a larger one still needs its
// consistency proof.
func checkGrowth(old, cur head) error {
	switch {
	case cur.Size < old.Size:
		return verifyError("the tree shrank from %d to %d entries", old.Size, cur.Size)
	case cur.Size == old.Size && cur.Root != old.Root:
		return verifyError("two different trees of %d entries: the log forked", cur.Size)
	}
	return nil
}
