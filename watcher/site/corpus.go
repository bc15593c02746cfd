package site

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/helpwatch/helpwatch/rules"
)

// Saved pages: the site check run on files (`site check --file`, `site test`), for rule tuning
// and the quality gates. A file is read as a fetch reads a page: at most MaxSavedPage bytes.

// MaxSavedPage bounds a saved page read from disk, as the fetch bounds a live one.
const MaxSavedPage = 2 << 20

// ReadSaved reads at most MaxSavedPage bytes of a saved page.
func ReadSaved(path string) ([]byte, Cut, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Cut{}, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, Cut{}, fmt.Errorf("%s is a directory", path)
	}
	// As a live page: padding skipped, so that it does not use up the limit.
	body, cut, err := readSqueezed(f, MaxSavedPage)
	if err != nil {
		return nil, cut, fmt.Errorf("%s: %w", path, err)
	}
	return body, cut, nil
}

// AnalyzeFile judges a saved page by its extension: HTML parsed, anything else as text.
func AnalyzeFile(rs *rules.RuleSet, lib *Library, name, path string, body []byte, cut Cut) *Report {
	ext := strings.ToLower(filepath.Ext(path))
	isHTML := ext == ".html" || ext == ".htm" || ((ext == "" || ext == ".php") && IsHTML("", body))
	return AnalyzeCut(rs, lib, name, body, isHTML, nil, cut)
}

// PageFiles expands folders into the regular files under them (sorted), skipping TSV and
// PROVENANCE.md manifests.
func PageFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && !strings.HasSuffix(path, ".tsv") && !strings.HasSuffix(path, "PROVENANCE.md") {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SiteOf is the site a saved file belongs to: its folder and the first depth parts of its name
// split at sep; a file whose name has fewer parts (or no sep) is a site of its own.
func SiteOf(path, sep string, depth int) string {
	name := filepath.Base(path)
	if sep == "" || depth < 1 {
		return path
	}
	parts := strings.SplitN(name, sep, depth+1)
	if len(parts) <= depth {
		return path
	}
	return filepath.Join(filepath.Dir(path), strings.Join(parts[:depth], sep))
}

// CorpusOptions say how saved files are grouped into sites (SiteSep empty: page by page).
type CorpusOptions struct {
	SiteSep   string
	SiteDepth int
}

// FileVerdict is how one saved file was judged: on its own, or by its site when the site
// judged as a whole is flagged and the page alone is not.
type FileVerdict struct {
	File    string
	Verdict rules.SiteVerdict
	Score   int
	Why     string
}

// CorpusResult is a folder of saved pages judged.
type CorpusResult struct {
	Files   []FileVerdict
	Counts  map[rules.SiteVerdict]int
	Flagged int
	// Unreadable are the files that could not be read (not counted).
	Unreadable []error
}

// Rate is the share of files judged clone or helpline.
func (r *CorpusResult) Rate() float64 {
	if len(r.Files) == 0 {
		return 0
	}
	return float64(r.Flagged) / float64(len(r.Files))
}

// JudgeCorpus judges saved pages, and with SiteSep the pages of each site together as a site
// check judges a site: a file counts as found when it or its site is clone or helpline.
func JudgeCorpus(rs *rules.RuleSet, lib *Library, files []string, opts CorpusOptions) *CorpusResult {
	res := &CorpusResult{Counts: map[rules.SiteVerdict]int{}}
	reports := make([]*Report, len(files))
	sites := map[string][]*Report{}
	for i, f := range files {
		body, cut, err := ReadSaved(f)
		if err != nil {
			res.Unreadable = append(res.Unreadable, err)
			continue
		}
		reports[i] = AnalyzeFile(rs, lib, filepath.Base(f), f, body, cut)
		if opts.SiteSep != "" {
			key := SiteOf(f, opts.SiteSep, opts.SiteDepth)
			sites[key] = append(sites[key], reports[i])
		}
	}
	siteVerdicts := map[string]rules.SiteResult{}
	for key, pages := range sites {
		if len(pages) > 1 {
			siteVerdicts[key] = JudgeSite(rs, "", pages)
		}
	}
	for i, f := range files {
		rep := reports[i]
		if rep == nil {
			continue
		}
		fv := FileVerdict{File: f, Verdict: rep.Verdict, Score: rep.Score, Why: strings.Join(rep.Indicate, ", ")}
		if sv, ok := siteVerdicts[SiteOf(f, opts.SiteSep, opts.SiteDepth)]; ok && opts.SiteSep != "" && sv.Verdict.Flagged() && !fv.Verdict.Flagged() {
			fv.Verdict, fv.Score, fv.Why = sv.Verdict, sv.Score, "site: "+strings.Join(sv.Indicators, ", ")
		}
		res.Counts[fv.Verdict]++
		if fv.Verdict.Flagged() {
			res.Flagged++
		}
		res.Files = append(res.Files, fv)
	}
	return res
}
