package site

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/glaslos/tlsh"
)

// maxShingles bounds a fingerprint's text shingles (the smallest hashes are kept: a bottom-k
// sketch, so two fingerprints still estimate their overlap).
const maxShingles = 1024

// maxTLSHInput bounds the markup hashed by TLSH.
const maxTLSHInput = 32 << 10

// Fingerprint is what a page is compared by: a TLSH of its markup with attribute values
// blanked (the structure of a kit survives new phone numbers and image names) and a sketch
// of the 4-word shingles of its visible text (the wording survives new markup).
type Fingerprint struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"` // "reference" (a brand's genuine page) or "kit" (a known scam kit)
	Brand    string   `json:"brand,omitempty"`
	TLSH     string   `json:"tlsh,omitempty"`
	Shingles []uint64 `json:"shingles"`
	tlsh     *tlsh.TLSH
}

// NormalizeHTML is the form of an HTML page fingerprints compare: tags and attribute names
// kept, attribute values blanked, text whitespace folded (the same as Page.Markup).
func NormalizeHTML(body []byte) []byte { return ExtractHTML(body, nil).Markup }

// shingles hashes every run of four words of text and keeps the smallest maxShingles. Word
// hashes are computed once and combined, so no shingle string is built.
func shingles(text string) []uint64 {
	var hashes []uint64
	const offset, prime = 14695981039346656037, 1099511628211
	h, inWord := uint64(offset), false
	for i := 0; i <= len(text); i++ {
		var c byte = ' '
		if i < len(text) {
			c = text[i]
		}
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			if inWord {
				hashes = append(hashes, h)
				h, inWord = offset, false
			}
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		h = (h ^ uint64(c)) * prime
		inWord = true
	}
	if len(hashes) < 4 {
		return nil
	}
	out := make([]uint64, 0, len(hashes)-3)
	for i := 0; i+4 <= len(hashes); i++ {
		x := hashes[i]*0x9e3779b97f4a7c15 ^ hashes[i+1]*0xbf58476d1ce4e5b9 ^ hashes[i+2]*0x94d049bb133111eb ^ hashes[i+3]
		out = append(out, x^(x>>31))
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > maxShingles {
		out = out[:maxShingles]
	}
	return out
}

// NewFingerprint fingerprints a page from its normalized markup (Page.Markup) and its visible
// text.
func NewFingerprint(name, kind, brand string, markup []byte, text string) *Fingerprint {
	fp := &Fingerprint{Name: name, Kind: kind, Brand: brand, Shingles: shingles(text)}
	// The head of the markup is enough to recognise a kit, and bounds the cost on large pages.
	if t, err := tlsh.HashBytes(markup[:min(len(markup), maxTLSHInput)]); err == nil {
		fp.tlsh, fp.TLSH = t, t.String()
	}
	return fp
}

// Similarity is how alike two fingerprints are, 0 to 1: the better of the markup distance
// (TLSH 0 is identical, 300 and more unrelated) and the overlap of the text sketches.
func (a *Fingerprint) Similarity(b *Fingerprint) float64 {
	best := 0.0
	if a.tlsh != nil && b.tlsh != nil {
		best = max(0, 1-float64(a.tlsh.Diff(b.tlsh))/300)
	}
	return max(best, sketchOverlap(a.Shingles, b.Shingles))
}

// sketchOverlap estimates the Jaccard similarity of two bottom-k sketches.
func sketchOverlap(a, b []uint64) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	k := min(maxShingles, len(a)+len(b))
	i, j, inter, union := 0, 0, 0, 0
	for union < k && (i < len(a) || j < len(b)) {
		switch {
		case j >= len(b) || (i < len(a) && a[i] < b[j]):
			i++
		case i >= len(a) || b[j] < a[i]:
			j++
		default:
			inter++
			i++
			j++
		}
		union++
	}
	return float64(inter) / float64(union)
}

// Library is a set of fingerprints pages are compared against.
type Library struct {
	Fingerprints []*Fingerprint `json:"fingerprints"`
}

// Closest returns the most similar fingerprint and the similarity.
func (l *Library) Closest(fp *Fingerprint) (*Fingerprint, float64) {
	var best *Fingerprint
	score := 0.0
	for _, f := range l.Fingerprints {
		if s := fp.Similarity(f); s > score {
			best, score = f, s
		}
	}
	return best, score
}

// LoadLibrary reads a fingerprint file written by Save; a missing file is an empty library.
func LoadLibrary(path string) (*Library, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return &Library{}, nil
	}
	if err != nil {
		return nil, err
	}
	var l Library
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, f := range l.Fingerprints {
		if f.TLSH != "" {
			t, err := tlsh.ParseStringToTlsh(f.TLSH)
			if err != nil {
				return nil, fmt.Errorf("%s: fingerprint %s: %w", path, f.Name, err)
			}
			f.tlsh = t
		}
	}
	return &l, nil
}

// Add puts a fingerprint in, replacing one of the same name.
func (l *Library) Add(fp *Fingerprint) {
	for i, f := range l.Fingerprints {
		if f.Name == fp.Name {
			l.Fingerprints[i] = fp
			return
		}
	}
	l.Fingerprints = append(l.Fingerprints, fp)
}

// Save writes the library atomically.
func (l *Library) Save(path string) error {
	data, err := json.MarshalIndent(l, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", data, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
