package ctlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"net/http"
	"strings"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/client"
	"github.com/google/certificate-transparency-go/jsonclient"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/sync/errgroup"
)

// entriesPerRequest is what one get-entries asks for; logs may answer with fewer (Google's
// give 32 at most), and the rest is asked for again.
const entriesPerRequest = 256

// rfcLog reads an RFC 6962 log through certificate-transparency-go's client: get-sth,
// get-sth-consistency, get-entries, and get-proof-by-hash to start at an index without
// reading what comes before it.
type rfcLog struct {
	c        *client.LogClient
	base     string // the log's URL, ending in "/"
	hc       *http.Client
	v        *ct.SignatureVerifier
	parallel int
	// perChunk bounds the entries verified together: one consistency proof each.
	perChunk int64
}

var rangeFactory = compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

func newRFCLog(l *Log, hc *http.Client, parallel int) (*rfcLog, error) {
	v, err := newSTHVerifier(l.Key)
	if err != nil {
		return nil, err
	}
	// No key for the client: it would verify the STH itself and its error could not be told
	// from a network one. We verify with the same verifier below.
	c, err := client.New(l.URL, hc, jsonclient.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, err
	}
	base := l.URL
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return &rfcLog{c: c, base: base, hc: hc, v: v, parallel: max(parallel, 1), perChunk: int64(max(parallel, 1)) * entriesPerRequest}, nil
}

func (r *rfcLog) head(ctx context.Context) (head, error) {
	sth, err := r.c.GetSTH(ctx)
	if err != nil {
		return head{}, err
	}
	if sth.TreeSize > 1<<62 {
		return head{}, verifyError("tree size %d", sth.TreeSize)
	}
	h := head{Size: int64(sth.TreeSize), Root: sth.SHA256RootHash, Time: time.UnixMilli(int64(sth.Timestamp)).UTC()}
	if err := verifySTH(r.v, sth.Timestamp, h.Size, h.Root, sth.TreeHeadSignature); err != nil {
		return head{}, err
	}
	return h, nil
}

func (r *rfcLog) consistent(ctx context.Context, old, cur head) error {
	if err := checkGrowth(old, cur); err != nil || old.Size == 0 || old.Size == cur.Size {
		return err
	}
	return r.prove(ctx, old.Size, old.Root[:], cur)
}

// prove checks a consistency proof from (size, root) to cur.
func (r *rfcLog) prove(ctx context.Context, size int64, root []byte, cur head) error {
	p, err := r.c.GetSTHConsistency(ctx, uint64(size), uint64(cur.Size))
	if err != nil {
		return err
	}
	if len(p) > 128 {
		return verifyError("consistency proof of %d hashes", len(p))
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(size), uint64(cur.Size), p, root, cur.Root[:]); err != nil {
		return verifyError("tree of %d entries is not a prefix of the tree of %d: %v", size, cur.Size, err)
	}
	return nil
}

// frontier builds the compact range of [0, index) from the inclusion proof of entry index-1 in
// the tree of index entries (for the rightmost leaf the proof is made of the very subtrees the
// range holds), and checks it against h.
func (r *rfcLog) frontier(ctx context.Context, h head, index int64) ([][]byte, error) {
	if index <= 0 {
		return nil, nil
	}
	leaves, err := r.leaves(ctx, index-1, index)
	if err != nil {
		return nil, err
	}
	leaf := rfc6962.DefaultHasher.HashLeaf(leaves[0].LeafInput)
	resp, err := r.c.GetProofByHash(ctx, leaf, uint64(index))
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of entry %d: %w", index-1, err)
	}
	if resp.LeafIndex != index-1 {
		// The same leaf logged twice: the proof is for its other copy.
		return nil, fmt.Errorf("inclusion proof of entry %d: the log answered for entry %d", index-1, resp.LeafIndex)
	}
	hashes, err := frontierFromPath(index, leaf, resp.AuditPath)
	if err != nil {
		return nil, err
	}
	rng, err := rangeFactory.NewRange(0, uint64(index), hashes)
	if err != nil {
		return nil, verifyError("frontier at %d: %v", index, err)
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return nil, err
	}
	if index == h.Size {
		if string(root) != string(h.Root[:]) {
			return nil, verifyError("entry %d is not in the tree of %d entries", index-1, h.Size)
		}
		return hashes, nil
	}
	if err := r.prove(ctx, index, root, h); err != nil {
		return nil, err
	}
	return hashes, nil
}

// frontierFromPath turns the audit path of the last leaf of a tree of size entries into that
// tree's compact range, largest subtree first.
func frontierFromPath(size int64, leaf []byte, path [][]byte) ([][]byte, error) {
	low := bits.TrailingZeros64(uint64(size))
	if len(path) != low+bits.OnesCount64(uint64(size))-1 {
		return nil, verifyError("inclusion proof of %d hashes for a tree of %d entries", len(path), size)
	}
	cur := leaf
	for _, p := range path[:low] {
		if len(p) != 32 {
			return nil, verifyError("inclusion proof hash of %d bytes", len(p))
		}
		cur = rfc6962.DefaultHasher.HashChildren(p, cur)
	}
	out := make([][]byte, 0, len(path)-low+1)
	for i := len(path) - 1; i >= low; i-- {
		if len(path[i]) != 32 {
			return nil, verifyError("inclusion proof hash of %d bytes", len(path[i]))
		}
		out = append(out, path[i])
	}
	return append(out, cur), nil
}

// leaves fetches [from, to) with as many get-entries as the log needs to give them all.
func (r *rfcLog) leaves(ctx context.Context, from, to int64) ([]ct.LeafEntry, error) {
	out := make([]ct.LeafEntry, 0, to-from)
	for next := from; next < to; {
		got, err := r.getEntries(ctx, next, to-1)
		if err != nil {
			return nil, fmt.Errorf("get-entries %d-%d: %w", next, to-1, err)
		}
		if len(got) == 0 {
			return nil, fmt.Errorf("get-entries %d-%d: the log returned no entries", next, to-1)
		}
		out = append(out, got...)
		next += int64(len(got))
	}
	return out, nil
}

// getEntries asks for [start, end] and reads the answer as a stream, one entry at a time,
// keeping only leaf_input: an answer is refused as soon as it holds more entries than were
// asked for, so a hostile log's millions of tiny entries cost nothing (decoding the whole
// answer first would cost about 48 bytes each before it could be trimmed).
func (r *rfcLog) getEntries(ctx context.Context, start, end int64) ([]ct.LeafEntry, error) {
	want := end - start + 1
	url := fmt.Sprintf("%sct/v1/get-entries?start=%d&end=%d", r.base, start, end)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{URL: url, Status: resp.StatusCode}
	}
	dec := json.NewDecoder(resp.Body)
	expect := func(want json.Delim) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); !ok || d != want {
			return fmt.Errorf("malformed answer: %v where %q was expected", tok, want)
		}
		return nil
	}
	out, err := readEntries(dec, expect, start, want)
	if err != nil {
		return nil, fmt.Errorf("the answer is not the get-entries JSON asked for: %w", err)
	}
	return out, nil
}

// readEntries reads {"entries": [{"leaf_input": ...}, ...]}, at most want entries.
func readEntries(dec *json.Decoder, expect func(json.Delim) error, start, want int64) ([]ct.LeafEntry, error) {
	if err := expect('{'); err != nil {
		return nil, err
	}
	var out []ct.LeafEntry
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, err
		}
		if key != "entries" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, err
			}
			continue
		}
		if err := expect('['); err != nil {
			return nil, err
		}
		for dec.More() {
			if int64(len(out)) == want {
				return nil, fmt.Errorf("more than the %d entries asked for", want)
			}
			var e struct {
				LeafInput []byte `json:"leaf_input"`
			}
			if err := dec.Decode(&e); err != nil {
				return nil, fmt.Errorf("entry %d: %w", start+int64(len(out)), err)
			}
			out = append(out, ct.LeafEntry{LeafInput: e.LeafInput})
		}
		if err := expect(']'); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r *rfcLog) fetch(ctx context.Context, h head, frontier [][]byte, from, to int64) (chunk, error) {
	to = min(to, from+r.perChunk, h.Size)
	rng, err := rangeFactory.NewRange(0, uint64(from), frontier)
	if err != nil {
		return chunk{}, fmt.Errorf("stored frontier at %d: %w", from, err)
	}
	parts := make([][]ct.LeafEntry, (to-from+entriesPerRequest-1)/entriesPerRequest)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.parallel)
	for i := range parts {
		start := from + int64(i)*entriesPerRequest
		end := min(start+entriesPerRequest, to)
		g.Go(func() error {
			var err error
			parts[i], err = r.leaves(gctx, start, end)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return chunk{}, err
	}
	c := chunk{next: to, entries: make([]*Entry, 0, to-from)}
	index := from
	for _, part := range parts {
		for _, le := range part {
			if err := rng.Append(rfc6962.DefaultHasher.HashLeaf(le.LeafInput), nil); err != nil {
				return chunk{}, err
			}
			// An entry that cannot be read is still hashed: it is in the tree, and the
			// ones around it are delivered once the tree verifies.
			if e, err := parseLeaf(index, le.LeafInput); err == nil {
				c.entries = append(c.entries, e)
			} else {
				c.skip(index, 1, err)
			}
			index++
		}
	}
	root, err := rng.GetRootHash(nil)
	if err != nil {
		return chunk{}, err
	}
	if to == h.Size {
		if string(root) != string(h.Root[:]) {
			return chunk{}, verifyError("entries %d-%d are not the ones the tree of %d entries holds", from, to-1, h.Size)
		}
	} else if err := r.prove(ctx, to, root, h); err != nil {
		if errors.Is(err, ErrVerify) {
			return chunk{}, verifyError("entries %d-%d are not in the tree of %d entries", from, to-1, h.Size)
		}
		return chunk{}, err
	}
	c.frontier = rng.Hashes()
	return c, nil
}

func (r *rfcLog) entryTime(ctx context.Context, h head, i int64) (time.Time, error) {
	leaves, err := r.leaves(ctx, i, i+1)
	if err != nil {
		return time.Time{}, err
	}
	ts, ok := leafTimestamp(leaves[0].LeafInput)
	if !ok {
		return time.Time{}, entryError("entry %d has no timestamp", i)
	}
	return ts, nil
}

// leafTimestamp reads the timestamp of a MerkleTreeLeaf (version, leaf type, uint64 ms).
func leafTimestamp(leaf []byte) (time.Time, bool) {
	if len(leaf) < 10 {
		return time.Time{}, false
	}
	var ms uint64
	for _, b := range leaf[2:10] {
		ms = ms<<8 | uint64(b)
	}
	return time.UnixMilli(int64(ms)).UTC(), true
}
