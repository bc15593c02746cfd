package source

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
)

// MaxNRDBytes bounds a newly-registered-domain list after decompression: the public daily
// lists hold a few hundred thousand names (under 10 MB); a list, or a gzip bomb, larger than
// this is cut there and said.
const MaxNRDBytes = 256 << 20

// NRD reads a list of newly registered domains (one name a line, the format of the public NRD
// lists; "#" comments, extra fields after the name ignored; gzip accepted, told by its magic
// bytes) as a source of names without certificates: a domain registered today that serves no
// TLS yet never reaches CT. A file is read once; a URL is fetched again every Every (default a
// day, conditionally), and only the names not in the previous list are emitted.
type NRD struct {
	// Location is a file path or an http(s) URL.
	Location string
	// Client fetches a URL (the address guard's client).
	Client *http.Client
	Every  time.Duration
	Log    *slog.Logger

	etag, lastModified string
	previous           map[string]struct{}
}

// IsURL reports whether the location is fetched rather than read.
func (n *NRD) IsURL() bool {
	return strings.HasPrefix(n.Location, "http://") || strings.HasPrefix(n.Location, "https://")
}

// Live: a fetched list keeps coming back; the pipeline should not wait for it. A file is a
// replay.
func (n *NRD) Live() bool     { return false }
func (n *NRD) String() string { return "nrd " + n.Location }

// Run reads the list (and, for a URL, again every Every until ctx ends).
func (n *NRD) Run(ctx context.Context, emit func(*watcher.Event), stats *watcher.Stats) error {
	log := n.Log
	if log == nil {
		log = slog.Default()
	}
	if !n.IsURL() {
		f, err := os.Open(n.Location)
		if err != nil {
			return fmt.Errorf("--source nrd: %w", err)
		}
		defer f.Close()
		_, err = n.read(ctx, f, emit, stats, log)
		return err
	}
	every := n.Every
	if every <= 0 {
		every = 24 * time.Hour
	}
	pause := Backoff{Min: time.Minute, Max: time.Hour}
	for {
		added, err := n.fetch(ctx, emit, stats, log)
		wait := every
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			wait = min(pause.Next(), every)
			log.Warn("newly registered domains: fetching the list failed; trying again", "url", n.Location, "err", err, "retry_in", wait)
		default:
			pause.Reset()
			log.Info("newly registered domains: list read", "url", n.Location, "new_names", added, "next", every)
		}
		if err := Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

func (n *NRD) fetch(ctx context.Context, emit func(*watcher.Event), stats *watcher.Stats, log *slog.Logger) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.Location, nil)
	if err != nil {
		return 0, err
	}
	if n.etag != "" {
		req.Header.Set("If-None-Match", n.etag)
	}
	if n.lastModified != "" {
		req.Header.Set("If-Modified-Since", n.lastModified)
	}
	client := n.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		return 0, nil
	case resp.StatusCode != http.StatusOK:
		return 0, fmt.Errorf("%s answered HTTP %d", req.URL.Host, resp.StatusCode)
	}
	added, err := n.read(ctx, resp.Body, emit, stats, log)
	if err == nil {
		n.etag, n.lastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	}
	return added, err
}

// read emits the names of one list that were not in the previous one.
func (n *NRD) read(ctx context.Context, r io.Reader, emit func(*watcher.Event), stats *watcher.Stats, log *slog.Logger) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var in io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("%s: not a readable gzip file: %w", n.Location, err)
		}
		defer zr.Close()
		in = zr
	}
	limited := &io.LimitedReader{R: in, N: MaxNRDBytes + 1}
	seen := make(map[string]struct{}, len(n.previous))
	added, bad := 0, 0
	now := time.Now().UTC()
	err := ReadNames(limited, NameListOptions{FirstField: true}, func(line int, name string, err error) error {
		if line%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			if bad < 10 {
				log.Warn("newly registered domains: skipping a line", "list", n.Location, "line", line, "problem", err)
			}
			bad++
			stats.Malformed.Add(1)
			return nil
		}
		if !plausibleDomain(name) {
			if bad < 10 {
				log.Warn("newly registered domains: skipping a line that is not a domain name", "list", n.Location, "line", line)
			}
			bad++
			stats.Malformed.Add(1)
			return nil
		}
		stats.Touch()
		name = strings.ToLower(name)
		seen[name] = struct{}{}
		if _, old := n.previous[name]; old {
			return nil
		}
		stats.Messages.Add(1)
		added++
		emit(&watcher.Event{Names: []string{name}, Seen: now, Cert: watcher.Certificate{Index: -1, LogName: "newly registered domains"}})
		return nil
	})
	if limited.N <= 0 {
		log.Warn("newly registered domains: the list is larger than the limit; the rest is not read", "list", n.Location, "limit_bytes", MaxNRDBytes)
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return added, err
		}
		return added, fmt.Errorf("%s: %w", n.Location, err)
	}
	n.previous = seen
	return added, nil
}

// plausibleDomain: LDH labels (A-labels for IDNs), at least two, 253 characters at most.
func plausibleDomain(name string) bool {
	if len(name) > 253 || !strings.Contains(name, ".") {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i] | 0x20
			if !(c >= 'a' && c <= 'z' || label[i] >= '0' && label[i] <= '9' || label[i] == '-') {
				return false
			}
		}
	}
	return true
}
