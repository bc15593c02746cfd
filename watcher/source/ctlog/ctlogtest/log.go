package ctlogtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/helpwatch/helpwatch/watcher/source/ctlog"
)

// Log is an in-process CT log. Add entries, then Publish to sign a head that covers them:
// a tree that grows while watched.
type Log struct {
	Kind   string // ctlog.KindRFC6962 or ctlog.KindStatic
	Name   string
	Key    *ecdsa.PrivateKey
	KeyDER []byte
	Origin string // static-ct-api checkpoint origin
	Server *httptest.Server
	// Hook, when set, sees every request first; returning true means it answered.
	Hook func(w http.ResponseWriter, r *http.Request) bool
	// MaxEntries caps one get-entries answer (default 256, as many logs do; Google's give 32).
	MaxEntries int
	// Requests counts requests by kind: "get-sth", "get-entries", "checkpoint", "data", "hash"...
	requests sync.Map

	mu        sync.Mutex
	entries   []Entry
	leaves    [][]byte    // MerkleTreeLeaf of each entry
	tileLeafs [][]byte    // TileLeaf of each entry
	stored    []tlog.Hash // every stored hash of the tree of len(entries) leaves
	published int64
	head      []byte // the signed head: get-sth JSON or checkpoint note
	// notModified counts checkpoint requests answered 304.
	notModified int
	headTree    tlog.Tree
	leafIndex   map[[32]byte]int64
}

// NewLog starts a log of kind on 127.0.0.1; it stops with the test.
func NewLog(t testing.TB, kind, name string) *Log {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	l := &Log{Kind: kind, Name: name, Key: key, KeyDER: der, MaxEntries: 256, leafIndex: map[[32]byte]int64{}}
	l.Server = httptest.NewServer(l)
	t.Cleanup(l.Server.Close)
	l.Origin = strings.TrimPrefix(l.Server.URL, "http://") + "/" + strings.ToLower(name)
	l.Publish()
	return l
}

// URL is where the log is read: for the log list.
func (l *Log) URL() string { return l.Server.URL + "/" + strings.ToLower(l.Name) + "/" }

// ListLog is the log as a log list entry (usable, with an interval around now).
func (l *Log) ListLog() ctlog.Log {
	id := sha256.Sum256(l.KeyDER)
	return ctlog.Log{Name: l.Name, Operator: "Test", ID: base64.StdEncoding.EncodeToString(id[:]), Key: l.KeyDER,
		URL: l.URL(), Kind: l.Kind, Origin: l.Origin, State: "usable",
		IntervalStart: time.Now().Add(-30 * 24 * time.Hour), End: time.Now().Add(365 * 24 * time.Hour)}
}

// List makes a log list of logs.
func List(logs ...*Log) *ctlog.List {
	out := &ctlog.List{Version: "test", Source: "test list"}
	for _, l := range logs {
		out.Logs = append(out.Logs, l.ListLog())
	}
	return out
}

// Add appends entries to the tree (not yet in a published head).
func (l *Log) Add(entries ...Entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range entries {
		leaf := e.MerkleTreeLeaf()
		n := int64(len(l.entries))
		hashes, err := tlog.StoredHashes(n, leaf, tlog.HashReaderFunc(l.readHashes))
		if err != nil {
			panic(err)
		}
		l.stored = append(l.stored, hashes...)
		l.entries = append(l.entries, e)
		l.leaves = append(l.leaves, leaf)
		l.tileLeafs = append(l.tileLeafs, e.TileLeaf())
		l.leafIndex[tlog.RecordHash(leaf)] = n
	}
}

// Size is the number of entries added.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.entries))
}

func (l *Log) readHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= int64(len(l.stored)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = l.stored[x]
	}
	return out, nil
}

// Publish signs a head over every entry added so far.
func (l *Log) Publish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := int64(len(l.entries))
	root, err := tlog.TreeHash(n, tlog.HashReaderFunc(l.readHashes))
	if err != nil {
		panic(err)
	}
	l.published = n
	l.headTree = tlog.Tree{N: n, Hash: root}
	l.head = l.signHead(l.Key, n, root, time.Now())
}

// Serve makes every entry added so far readable (tiles, get-entries, proofs) without signing
// a head that covers them: what a log serves before its next head, and what a test serving a
// forged head needs so that no honest head slips out.
func (l *Log) Serve() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.published = int64(len(l.entries))
}

// SignedHead signs an arbitrary head (a shrunk or forked one for fault tests) in the log's
// format, as get-sth or checkpoint serves it; key nil means the log's own key, another key
// makes a head whose signature does not verify.
func (l *Log) SignedHead(key *ecdsa.PrivateKey, n int64, root [32]byte) []byte {
	if key == nil {
		key = l.Key
	}
	return l.signHead(key, n, root, time.Now())
}

// IsHead reports whether r asks for the signed head (get-sth or checkpoint).
func IsHead(r *http.Request) bool {
	return strings.HasSuffix(r.URL.Path, "/ct/v1/get-sth") || strings.HasSuffix(r.URL.Path, "/checkpoint")
}

// HeadRoot is the root of the published head.
func (l *Log) HeadRoot() [32]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.headTree.Hash
}

// RootAt is the root of the tree of the first n entries.
func (l *Log) RootAt(n int64) [32]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, err := tlog.TreeHash(n, tlog.HashReaderFunc(l.readHashes))
	if err != nil {
		panic(err)
	}
	return h
}

func sthSignature(key *ecdsa.PrivateKey, n int64, root [32]byte, ts uint64) ct.DigitallySigned {
	input, err := ct.SerializeSTHSignatureInput(ct.SignedTreeHead{Version: ct.V1, TreeSize: uint64(n), Timestamp: ts, SHA256RootHash: root})
	if err != nil {
		panic(err)
	}
	sig, err := cttls.CreateSignature(*key, cttls.SHA256, input)
	if err != nil {
		panic(err)
	}
	return ct.DigitallySigned(sig)
}

func (l *Log) signHead(key *ecdsa.PrivateKey, n int64, root [32]byte, at time.Time) []byte {
	ts := uint64(at.UnixMilli())
	sig := sthSignature(key, n, root, ts)
	if l.Kind == ctlog.KindRFC6962 {
		raw, _ := cttls.Marshal(sig)
		out, _ := json.Marshal(ct.GetSTHResponse{TreeSize: uint64(n), Timestamp: ts, SHA256RootHash: root[:], TreeHeadSignature: raw})
		return out
	}
	text := fmt.Sprintf("%s\n%d\n%s\n", l.Origin, n, base64.StdEncoding.EncodeToString(root[:]))
	msg, err := note.Sign(&note.Note{Text: text}, &noteSigner{l: l, ts: ts, sig: sig})
	if err != nil {
		panic(err)
	}
	return msg
}

type noteSigner struct {
	l   *Log
	ts  uint64
	sig ct.DigitallySigned
}

func (s *noteSigner) Name() string    { return s.l.Origin }
func (s *noteSigner) KeyHash() uint32 { return ctlog.NoteKeyHash(s.l.Origin, s.l.KeyDER) }
func (s *noteSigner) Sign([]byte) ([]byte, error) {
	raw, err := cttls.Marshal(s.sig)
	if err != nil {
		return nil, err
	}
	out := binary.BigEndian.AppendUint64(nil, s.ts)
	return append(out, raw...), nil
}

// NewKey makes a signing key (for heads that must not verify).
func NewKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// Count is how many requests of kind the log has answered or refused.
func (l *Log) Count(kind string) int64 {
	v, ok := l.requests.Load(kind)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func (l *Log) count(kind string) {
	v, _ := l.requests.LoadOrStore(kind, &atomic.Int64{})
	v.(*atomic.Int64).Add(1)
}

// Kind of request, as Count names it.
func RequestKind(path string) string {
	switch {
	case strings.Contains(path, "/tile/data/"):
		return "data"
	case strings.Contains(path, "/tile/"):
		return "hash"
	}
	return path[strings.LastIndexByte(path, '/')+1:]
}

func (l *Log) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	prefix := "/" + strings.ToLower(l.Name) + "/"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		http.NotFound(w, r)
		return
	}
	l.count(RequestKind(r.URL.Path))
	if l.Hook != nil && l.Hook(w, r) {
		return
	}
	path := strings.TrimPrefix(r.URL.Path, prefix)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Kind == ctlog.KindRFC6962 {
		l.serveRFC(w, r, path)
		return
	}
	l.serveStatic(w, r, path)
}

func (l *Log) treeReader(n int64) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		for _, x := range indexes {
			if lvl, i := tlog.SplitStoredHashIndex(x); (i+1)<<lvl > n {
				return nil, fmt.Errorf("hash %d beyond the tree", x)
			}
		}
		return l.readHashes(indexes)
	})
}

func (l *Log) serveRFC(w http.ResponseWriter, r *http.Request, path string) {
	q := r.URL.Query()
	num := func(k string) int64 {
		v, err := strconv.ParseInt(q.Get(k), 10, 64)
		if err != nil {
			return -1
		}
		return v
	}
	switch path {
	case "ct/v1/get-sth":
		w.Write(l.head)
	case "ct/v1/get-sth-consistency":
		first, second := num("first"), num("second")
		if first < 0 || second < first || second > l.published {
			http.Error(w, "bad sizes", http.StatusBadRequest)
			return
		}
		var p tlog.TreeProof
		if first > 0 && first < second {
			var err error
			if p, err = tlog.ProveTree(second, first, l.treeReader(second)); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		json.NewEncoder(w).Encode(ct.GetSTHConsistencyResponse{Consistency: hashesOf(p)})
	case "ct/v1/get-proof-by-hash":
		size := num("tree_size")
		hash, err := base64.StdEncoding.DecodeString(q.Get("hash"))
		var key [32]byte
		copy(key[:], hash)
		index, ok := l.leafIndex[key]
		if err != nil || !ok || size <= index || size > l.published {
			http.Error(w, "no such leaf in that tree", http.StatusBadRequest)
			return
		}
		p, err := tlog.ProveRecord(size, index, l.treeReader(size))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(ct.GetProofByHashResponse{LeafIndex: index, AuditPath: hashesOf(p)})
	case "ct/v1/get-entries":
		start, end := num("start"), num("end")
		if start < 0 || end < start || start >= l.published {
			http.Error(w, "bad range", http.StatusBadRequest)
			return
		}
		end = min(end, l.published-1, start+int64(l.MaxEntries)-1)
		resp := ct.GetEntriesResponse{}
		for i := start; i <= end; i++ {
			resp.Entries = append(resp.Entries, ct.LeafEntry{LeafInput: l.leaves[i], ExtraData: []byte{0, 0, 0}})
		}
		json.NewEncoder(w).Encode(resp)
	default:
		http.NotFound(w, r)
	}
}

func hashesOf[H ~[32]byte](p []H) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = append([]byte(nil), p[i][:]...)
	}
	return out
}

func (l *Log) serveStatic(w http.ResponseWriter, r *http.Request, path string) {
	if path == "checkpoint" {
		// An ETag as a CDN in front of a real log gives one: a client asking again with
		// If-None-Match gets 304 while the checkpoint is the same.
		sum := sha256.Sum256(l.head)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			l.notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(l.head)
		return
	}
	var t tlog.Tile
	var err error
	if rest, ok := strings.CutPrefix(path, "tile/data/"); ok {
		t, err = tlog.ParseTilePath("tile/8/data/" + rest)
	} else if rest, ok := strings.CutPrefix(path, "tile/"); ok {
		t, err = tlog.ParseTilePath("tile/8/" + rest)
	} else {
		err = fmt.Errorf("no such path")
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	// A tile exists once the published tree covers it at that width.
	if t.L == -1 {
		start := t.N * 256
		if start+int64(t.W) > l.published {
			http.Error(w, "tile not there yet", http.StatusNotFound)
			return
		}
		var out []byte
		for i := start; i < start+int64(t.W); i++ {
			out = append(out, l.tileLeafs[i]...)
		}
		w.Write(out)
		return
	}
	span := int64(1) << (8 * t.L)
	if (t.N*256+int64(t.W))*span > l.published {
		http.Error(w, "tile not there yet", http.StatusNotFound)
		return
	}
	data, err := tlog.ReadTileData(t, l.treeReader(l.published))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(data)
}

// WriteList writes a CT log list v3 file (Google's format) naming logs, for --log-list.
func WriteList(path string, logs ...*Log) error {
	type state struct {
		Usable struct {
			Timestamp time.Time `json:"timestamp"`
		} `json:"usable"`
	}
	type interval struct {
		Start time.Time `json:"start_inclusive"`
		End   time.Time `json:"end_exclusive"`
	}
	type entry struct {
		Description string   `json:"description"`
		LogID       []byte   `json:"log_id"`
		Key         []byte   `json:"key"`
		URL         string   `json:"url,omitempty"`
		Submission  string   `json:"submission_url,omitempty"`
		Monitoring  string   `json:"monitoring_url,omitempty"`
		MMD         int      `json:"mmd"`
		State       state    `json:"state"`
		Interval    interval `json:"temporal_interval"`
	}
	type operator struct {
		Name  string   `json:"name"`
		Email []string `json:"email"`
		Logs  []entry  `json:"logs"`
		Tiled []entry  `json:"tiled_logs"`
	}
	op := operator{Name: "Test", Email: []string{"ct@example.org"}, Logs: []entry{}, Tiled: []entry{}}
	for _, l := range logs {
		ll := l.ListLog()
		id := sha256.Sum256(l.KeyDER)
		e := entry{Description: "Test '" + l.Name + "' log", LogID: id[:], Key: l.KeyDER, MMD: 86400,
			Interval: interval{ll.IntervalStart.UTC().Truncate(time.Second), ll.End.UTC().Truncate(time.Second)}}
		e.State.Usable.Timestamp = time.Now().Add(-24 * time.Hour).UTC().Truncate(time.Second)
		if l.Kind == ctlog.KindRFC6962 {
			e.URL = l.URL()
			op.Logs = append(op.Logs, e)
		} else {
			e.Submission, e.Monitoring = "http://"+l.Origin+"/", l.URL()
			op.Tiled = append(op.Tiled, e)
		}
	}
	data, err := json.MarshalIndent(map[string]any{"version": "1.0", "log_list_timestamp": time.Now().UTC().Format(time.RFC3339),
		"operators": []operator{op}}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// NotModified is how many checkpoint requests were answered 304 Not Modified.
func (l *Log) NotModified() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.notModified
}
