package ctlog

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"filippo.io/torchwood"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/mod/sumdb/tlog"
	"golang.org/x/sync/errgroup"
)

const tileWidth = torchwood.TileWidth

// staticLog reads a static-ct-api log (c2sp.org/static-ct-api): the signed checkpoint, data
// tiles of 256 entries (partial at the right edge: .p/W), and hash tiles, through which every
// tree head and every data tile is recomputed up to the checkpoint's root before anything in
// it is believed.
type staticLog struct {
	base     string
	hc       *http.Client
	v        *noteVerifier
	hashes   *tileCache
	parallel int
	// perChunk bounds the data tiles read and verified together.
	perChunk int
	// The last checkpoint and its validators: a log (or its CDN) answers a conditional
	// request with 304 while the checkpoint is unchanged, which is what makes polling every
	// second cheap. Only the follower's goroutine uses them.
	checkpoint         []byte
	etag, lastModified string
}

func newStaticLog(l *Log, hc *http.Client, parallel int) (*staticLog, error) {
	v, err := newNoteVerifier(l.Origin, l.Key)
	if err != nil {
		return nil, err
	}
	s := &staticLog{base: l.URL, hc: hc, v: v, parallel: max(parallel, 1), perChunk: max(parallel, 1) * 2}
	s.hashes = newTileCache(s)
	return s, nil
}

// tilePath is the static-ct-api path of a tile: like tlog-tiles, but data tiles live under
// tile/data/.
func tilePath(t tlog.Tile) string {
	if t.L == -1 {
		return "tile/data/" + strings.TrimPrefix(t.Path(), "tile/8/data/")
	}
	return "tile/" + strings.TrimPrefix(t.Path(), "tile/8/")
}

func (s *staticLog) head(ctx context.Context) (head, error) {
	data, err := s.fetchCheckpoint(ctx)
	if err != nil {
		return head{}, err
	}
	h, v, err := openCheckpoint(data, s.v)
	s.v = v
	return h, err
}

func (s *staticLog) consistent(ctx context.Context, old, cur head) error {
	if err := checkGrowth(old, cur); err != nil || old.Size == 0 || old.Size == cur.Size {
		return err
	}
	hr := s.hashReader(ctx, cur)
	p, err := tlog.ProveTree(cur.Size, old.Size, hr)
	if err == nil {
		err = tlog.CheckTree(p, cur.Size, cur.Root, old.Size, old.Root)
		if err != nil {
			return verifyError("tree of %d entries is not a prefix of the tree of %d: %v", old.Size, cur.Size, err)
		}
	}
	return hr.explain(err)
}

func (s *staticLog) frontier(context.Context, head, int64) ([][]byte, error) { return nil, nil }

// verifiedHashes reads stored hashes of tree h through hash tiles checked up to h's root.
type verifiedHashes struct {
	tlog.HashReader
	fetchErr *error
}

// explain tells apart a tile we could not fetch (retried later) from tiles that do not hash
// to the root (a verification failure).
func (v verifiedHashes) explain(err error) error {
	switch {
	case err == nil, errors.Is(err, ErrVerify):
		return err
	case *v.fetchErr != nil:
		return *v.fetchErr
	}
	return verifyError("hash tiles do not match the tree head: %v", err)
}

func (s *staticLog) hashReader(ctx context.Context, h head) verifiedHashes {
	var fetchErr error
	tr := &recordingReader{tileCache: s.hashes, err: &fetchErr}
	return verifiedHashes{HashReader: torchwood.TileHashReaderWithContext(ctx, tlog.Tree{N: h.Size, Hash: h.Root}, tr), fetchErr: &fetchErr}
}

func (s *staticLog) fetch(ctx context.Context, h head, _ [][]byte, from, to int64) (chunk, error) {
	to = min(to, h.Size)
	first, last := from/tileWidth, (to-1)/tileWidth
	last = min(last, first+int64(s.perChunk)-1)
	// A partial tile at the right edge is read only when nothing else is left: once the log
	// has filled it, the full tile replaces it, and steady state does not read tiles twice.
	if last > first && (last+1)*tileWidth > h.Size {
		last--
	}
	tiles := make([]tlog.Tile, 0, last-first+1)
	for n := first; n <= last; n++ {
		w := min(int64(tileWidth), h.Size-n*tileWidth)
		tiles = append(tiles, tlog.Tile{H: torchwood.TileHeight, L: -1, N: n, W: int(w)})
	}
	data := make([][]byte, len(tiles))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.parallel)
	for i, t := range tiles {
		g.Go(func() error {
			var err error
			data[i], err = get(gctx, s.hc, s.base+tilePath(t))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return chunk{}, err
	}

	end := min(to, (last+1)*tileWidth)
	c := chunk{next: end, entries: make([]*Entry, 0, end-from)}
	var want []int64
	var got []tlog.Hash
	hr := s.hashReader(ctx, h)
	for i, t := range tiles {
		hashes, err := cutTile(t, data[i], from, end, &c, hr)
		if err != nil {
			return chunk{}, err
		}
		data[i] = nil
		if len(hashes) == tileWidth {
			want = append(want, tlog.StoredHashIndex(torchwood.TileHeight, t.N))
			got = append(got, subtreeRoot(hashes))
			continue
		}
		// A partial tile, or a full one cut short by an entry that cannot be split: the
		// leaves read are checked one by one against the tree's own leaf hashes.
		for j, hash := range hashes {
			want = append(want, tlog.StoredHashIndex(0, t.N*tileWidth+int64(j)))
			got = append(got, hash)
		}
	}
	stored, err := hr.ReadHashes(want)
	if err = hr.explain(err); err != nil {
		return chunk{}, err
	}
	for i := range want {
		if stored[i] != got[i] {
			return chunk{}, verifyError("data tile entries %d-%d do not hash to the tree of %d entries", from, end-1, h.Size)
		}
	}
	return c, nil
}

// cutTile splits a data tile into leaves, keeps the entries in [from, end) in c, and returns
// the leaf hashes of the tile's entries, in order from the first. An entry of a type RFC 6962
// does not define cannot be split by its framing (its length is unknown): resync proves it is
// in the tree and finds where the next entry starts; when it cannot find that, the rest of the
// tile is counted as unreadable and only the hashes up to the entry are returned.
func cutTile(t tlog.Tile, tile []byte, from, end int64, c *chunk, hr verifiedHashes) ([][32]byte, error) {
	hashes := make([][32]byte, 0, t.W)
	tileEnd := t.N*tileWidth + int64(t.W)
	rest := tile
	for j := range t.W {
		index := t.N*tileWidth + int64(j)
		if len(rest) == 0 {
			return nil, verifyError("data tile %s holds %d entries, not %d", tilePath(t), j, t.W)
		}
		l, r, err := splitTileLeaf(rest)
		if errors.Is(err, errUnknownType) {
			hash, r, err := resync(hr, index, rest, index == tileEnd-1)
			if err != nil {
				return nil, err
			}
			hashes = append(hashes, hash)
			if index >= from && index < end {
				c.skip(index, 1, fmt.Errorf("entry %d is of a type RFC 6962 does not define", index))
			}
			if r == nil {
				// Where the next entry starts is not known: the rest of the tile is lost.
				if skipFrom, skipTo := max(index+1, from), min(tileEnd, end); skipTo > skipFrom {
					c.skip(skipFrom, int(skipTo-skipFrom), fmt.Errorf("entries %d-%d follow an entry of unknown type in data tile %s and cannot be split from it", skipFrom, skipTo-1, tilePath(t)))
				}
				return hashes, nil
			}
			rest = r
			continue
		}
		if err != nil {
			return nil, verifyError("data tile %s, entry %d: %v", tilePath(t), index, err)
		}
		rest = r
		hashes = append(hashes, l.hash)
		if index < from || index >= end {
			continue
		}
		e, err := newEntry(index, l.ts, l.typ, l.cert)
		if err != nil {
			c.skip(index, 1, err)
			continue
		}
		c.entries = append(c.entries, e)
	}
	if len(rest) != 0 {
		return nil, verifyError("data tile %s has %d bytes after its %d entries", tilePath(t), len(rest), t.W)
	}
	return hashes, nil
}

// resync handles an entry of unknown type at the front of b, entry index of the tree. It finds
// the TimestampedEntry whose leaf hash is the tree's own leaf hash of index, by trying every
// length up to 2 MiB (one SHA-256 finalisation per byte): an entry counted as
// unreadable is proved to be in the tree, so an honest log's tile garbled on the way (an error
// page served as 200) is retried, not skipped. It then tries the TileLeaf tails the known
// types have (a chain of fingerprints; a precertificate and a chain) and keeps the one after
// which the next entry hashes to the tree's next leaf (or, for the tile's last entry, nothing
// is left). rest is nil when none does.
func resync(hr verifiedHashes, index int64, b []byte, last bool) (hash [32]byte, rest []byte, err error) {
	want := []int64{tlog.StoredHashIndex(0, index)}
	if !last {
		want = append(want, tlog.StoredHashIndex(0, index+1))
	}
	stored, err := hr.ReadHashes(want)
	if err = hr.explain(err); err != nil {
		return hash, nil, err
	}
	const minEntry = 8 + 2 + 2 // timestamp, type, empty extensions
	// No entry is searched for past twice what a certificate may be: a hostile tile costs
	// at most a few million hash finalisations, and a longer entry stalls only its own log.
	const maxEntry = 2 * maxEntryBytes
	n := 0
	if len(b) >= minEntry {
		h := sha256.New()
		h.Write([]byte{0, 0, 0})
		h.Write(b[:minEntry-1])
		for i := minEntry; i <= min(len(b), maxEntry); i++ {
			h.Write(b[i-1 : i])
			if h.Sum(hash[:0]); hash == stored[0] {
				n = i
				break
			}
		}
	}
	if n == 0 {
		return hash, nil, verifyError("entry %d of a data tile is of a type RFC 6962 does not define, and no prefix of it hashes to the tree's leaf", index)
	}
	for _, tail := range []func(*cryptobyte.String) bool{
		func(s *cryptobyte.String) bool { return skipChain(s) },
		func(s *cryptobyte.String) bool {
			var pre cryptobyte.String
			return s.ReadUint24LengthPrefixed(&pre) && skipChain(s)
		},
	} {
		s := cryptobyte.String(b[n:])
		if !tail(&s) {
			continue
		}
		if last {
			if len(s) == 0 {
				return hash, []byte{}, nil
			}
			continue
		}
		if next, _, err := splitTileLeaf(s); err == nil && next.hash == stored[1] {
			return hash, []byte(s), nil
		}
	}
	return hash, nil, nil
}

func skipChain(s *cryptobyte.String) bool {
	var chain cryptobyte.String
	return s.ReadUint16LengthPrefixed(&chain) && len(chain)%32 == 0
}

// subtreeRoot is the Merkle root of a full tile's 256 leaf hashes.
func subtreeRoot(hashes [][32]byte) tlog.Hash {
	level := make([]tlog.Hash, len(hashes))
	for i, h := range hashes {
		level[i] = h
	}
	for len(level) > 1 {
		for i := 0; i < len(level)/2; i++ {
			level[i] = tlog.NodeHash(level[2*i], level[2*i+1])
		}
		level = level[:len(level)/2]
	}
	return level[0]
}

func (s *staticLog) entryTime(ctx context.Context, h head, i int64) (time.Time, error) {
	n := i / tileWidth
	t := tlog.Tile{H: torchwood.TileHeight, L: -1, N: n, W: int(min(int64(tileWidth), h.Size-n*tileWidth))}
	data, err := get(ctx, s.hc, s.base+tilePath(t))
	if err != nil {
		return time.Time{}, err
	}
	rest := data
	for j := t.N * tileWidth; len(rest) > 0; j++ {
		l, r, err := splitTileLeaf(rest)
		if err != nil {
			return time.Time{}, err
		}
		if j == i {
			return time.UnixMilli(int64(l.ts)).UTC(), nil
		}
		rest = r
	}
	return time.Time{}, entryError("entry %d is not in data tile %s", i, tilePath(t))
}

// tileCache keeps the hash tiles tlog has verified (SaveTiles), a few per level, so that
// following the right edge of a log reads each upper tile once, not once per data tile.
type tileCache struct {
	s  *staticLog
	mu sync.Mutex
	// Keys include the width: a partial tile and the full one are different tiles.
	lru *simplelru.LRU[tlog.Tile, []byte]
}

func newTileCache(s *staticLog) *tileCache {
	lru, _ := simplelru.NewLRU[tlog.Tile, []byte](64, nil)
	return &tileCache{s: s, lru: lru}
}

// recordingReader is the cache as tlog sees it for one read, remembering a fetch error.
type recordingReader struct {
	*tileCache
	err *error
}

func (r *recordingReader) ReadTiles(ctx context.Context, tiles []tlog.Tile) ([][]byte, error) {
	data, err := r.tileCache.ReadTiles(ctx, tiles)
	if err != nil {
		*r.err = err
	}
	return data, err
}

func (c *tileCache) ReadTiles(ctx context.Context, tiles []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(tiles))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.s.parallel)
	for i, t := range tiles {
		c.mu.Lock()
		d, ok := c.lru.Get(t)
		c.mu.Unlock()
		if ok {
			data[i] = d
			continue
		}
		g.Go(func() error {
			b, err := get(gctx, c.s.hc, c.s.base+tilePath(t))
			if err != nil {
				return err
			}
			if len(b) != t.W*tlog.HashSize {
				return verifyError("hash tile %s of %d bytes, want %d", tilePath(t), len(b), t.W*tlog.HashSize)
			}
			data[i] = b
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return data, nil
}

func (c *tileCache) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, t := range tiles {
		c.lru.Add(t, data[i])
	}
}

func (c *tileCache) ReadEndpoint(ctx context.Context, path string) ([]byte, error) {
	return get(ctx, c.s.hc, c.s.base+path)
}

// fetchCheckpoint gets the checkpoint, conditionally once one was read.
func (s *staticLog) fetchCheckpoint(ctx context.Context) ([]byte, error) {
	url := s.base + "checkpoint"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if s.checkpoint != nil {
		if s.etag != "" {
			req.Header.Set("If-None-Match", s.etag)
		}
		if s.lastModified != "" {
			req.Header.Set("If-Modified-Since", s.lastModified)
		}
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && s.checkpoint != nil:
		return s.checkpoint, nil
	case resp.StatusCode != http.StatusOK:
		return nil, &StatusError{URL: url, Status: resp.StatusCode}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckpointBytes+1))
	if err != nil {
		return nil, err
	}
	s.checkpoint, s.etag, s.lastModified = data, resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	return data, nil
}
