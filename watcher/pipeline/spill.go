package pipeline

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/helpwatch/helpwatch/watcher/store"
)

// spill writes the sightings a stopping watch could not store to a new file in dir, as
// certstream messages: replaying the file as a source stores them with their certificates, so
// a stop with a broken or overloaded store loses nothing. It returns the file's path and how
// many sightings it holds (position markers are not sightings: a CT source reads their
// entries again from the position committed last).
func spill(dir string, now time.Time, batch []store.Sighting) (string, int, error) {
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "helpwatch-unstored-"+now.UTC().Format("20060102T150405Z")+"-*.jsonl")
	if err != nil {
		return "", 0, err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	n := 0
	for i := range batch {
		sg := &batch[i]
		if sg.Position != nil {
			continue
		}
		if err := enc.Encode(spillMessage(sg)); err != nil {
			f.Close()
			return f.Name(), n, err
		}
		n++
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return f.Name(), n, err
	}
	if err := f.Close(); err != nil {
		return f.Name(), n, err
	}
	path, _ := filepath.Abs(f.Name())
	return path, n, nil
}

// certstreamMessage is the part of a certstream certificate_update message the replay reads.
type certstreamMessage struct {
	MessageType string         `json:"message_type"`
	Data        certstreamData `json:"data"`
}

type certstreamData struct {
	CertIndex int64            `json:"cert_index"`
	CertLink  string           `json:"cert_link,omitempty"`
	Seen      float64          `json:"seen"`
	Source    certstreamSource `json:"source"`
	LeafCert  certstreamLeaf   `json:"leaf_cert"`
}

type certstreamSource struct {
	Name string `json:"name,omitempty"`
	URL  string `json:"url,omitempty"`
}

type certstreamLeaf struct {
	AllDomains  []string          `json:"all_domains"`
	Fingerprint string            `json:"fingerprint,omitempty"`
	NotBefore   int64             `json:"not_before,omitempty"`
	NotAfter    int64             `json:"not_after,omitempty"`
	Issuer      map[string]string `json:"issuer,omitempty"`
}

func spillMessage(sg *store.Sighting) certstreamMessage {
	c := &sg.Cert
	seen := sg.CTSeen
	if seen.IsZero() {
		seen = sg.At
	}
	m := certstreamMessage{MessageType: "certificate_update", Data: certstreamData{
		CertIndex: c.Index, CertLink: c.Link, Seen: float64(seen.UnixMilli()) / 1000,
		Source:   certstreamSource{Name: c.LogName, URL: c.LogURL},
		LeafCert: certstreamLeaf{AllDomains: []string{sg.Result.Domain}, Fingerprint: c.Fingerprint},
	}}
	if !c.NotBefore.IsZero() {
		m.Data.LeafCert.NotBefore = c.NotBefore.Unix()
	}
	if !c.NotAfter.IsZero() {
		m.Data.LeafCert.NotAfter = c.NotAfter.Unix()
	}
	if c.Issuer != "" {
		m.Data.LeafCert.Issuer = map[string]string{"aggregated": c.Issuer}
	}
	return m
}

// unstoredError is what a stop that could not store everything returns: how many, why, and
// where they went.
func unstoredError(batch []store.Sighting, dir string, now time.Time, cause error) error {
	markers := 0
	for i := range batch {
		if batch[i].Position != nil {
			markers++
		}
	}
	msg := fmt.Sprintf("%d sightings could not be stored before shutdown: %v", len(batch)-markers, cause)
	if markers > 0 {
		msg += "; the CT logs' positions were not moved past them either, so the next watch reads those entries again"
	}
	if len(batch) == markers {
		return fmt.Errorf("%s", msg)
	}
	path, n, err := spill(dir, now, batch)
	if err != nil {
		return fmt.Errorf("%s; writing them to %s failed too: %v", msg, path, err)
	}
	return fmt.Errorf("%s; all %d are in %s, which stores them when replayed as a watch's source", msg, n, path)
}
