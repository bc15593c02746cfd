package ctlog

import (
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/certificate-transparency-go/loglist3"
)

// builtinList is a snapshot of Google's CT log list v3 (version 89.30, a subset of 20 logs):
// the default when no --log-list is given.
//
//go:embed log_list.json
var builtinList []byte

// BuiltinListVersion names the embedded snapshot in logs and `helpwatch logs`.
const BuiltinListVersion = "built-in v89.30 (20 logs)"

// Log kinds.
const (
	KindRFC6962 = "rfc6962"
	KindStatic  = "static-ct-api"
)

// MaxValidity is the longest TLS certificate lifetime allowed since 2026-03-15: a certificate
// issued now expires at most this far ahead, so it lands in a log whose temporal interval
// starts before now plus this.
const MaxValidity = 200 * 24 * time.Hour

// Log is one CT log of the list.
type Log struct {
	Name     string // the short name: "Argon2026h2"
	Operator string
	ID       string // base64 of the SHA-256 of Key, as the list gives it
	Key      []byte // DER SubjectPublicKeyInfo
	URL      string // where entries are read: the RFC 6962 url, or a static log's monitoring prefix
	Kind     string
	// Origin is a static-ct-api log's checkpoint origin: its submission prefix without scheme
	// and trailing slash.
	Origin string
	State  string // usable, qualified, readonly, pending, retired, rejected
	// Final is a read-only log's final tree head: nothing after it is read.
	Final              *TreeHead
	IntervalStart, End time.Time // the temporal interval of NotAfter dates: [start, end)
}

// TreeHead is a tree size and root hash.
type TreeHead struct {
	Size int64
	Root [32]byte
}

// Title is how a log is named in messages: operator and name.
func (l *Log) Title() string {
	if l.Operator == "" || strings.HasPrefix(l.Name, l.Operator) {
		return l.Name
	}
	return l.Operator + " " + l.Name
}

// List is a parsed log list.
type List struct {
	Version string
	Source  string // the file, URL or BuiltinListVersion
	Logs    []Log
}

// Builtin returns the embedded log list.
func Builtin() *List {
	l, err := ParseList(builtinList)
	if err != nil {
		panic("the embedded CT log list does not parse: " + err.Error())
	}
	l.Source = BuiltinListVersion
	return l
}

// maxListBytes bounds a log list read from a file or URL (the full v3 list is about 100 KB).
const maxListBytes = 8 << 20

// LoadList reads a log list from a file or an http(s) URL (fetched with hc).
func LoadList(src string, hc *http.Client) (*List, error) {
	var data []byte
	if strings.HasPrefix(src, "https://") || strings.HasPrefix(src, "http://") {
		resp, err := hc.Get(src)
		if err != nil {
			return nil, fmt.Errorf("log list %s: %w", src, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("log list %s: HTTP %s", src, resp.Status)
		}
		data, err = io.ReadAll(io.LimitReader(resp.Body, maxListBytes+1))
		if err != nil {
			return nil, fmt.Errorf("log list %s: %w", src, err)
		}
	} else {
		f, err := os.Open(src)
		if err != nil {
			return nil, fmt.Errorf("log list: %w", err)
		}
		defer f.Close()
		data, err = io.ReadAll(io.LimitReader(f, maxListBytes+1))
		if err != nil {
			return nil, fmt.Errorf("log list %s: %w", src, err)
		}
	}
	if len(data) > maxListBytes {
		return nil, fmt.Errorf("log list %s: larger than %d MB", src, maxListBytes>>20)
	}
	l, err := ParseList(data)
	if err != nil {
		return nil, fmt.Errorf("log list %s: %w", src, err)
	}
	l.Source = src
	return l, nil
}

// ParseList reads Google's log list v3 JSON: `logs` are RFC 6962 logs, `tiled_logs`
// static-ct-api logs.
func ParseList(data []byte) (*List, error) {
	ll, err := loglist3.NewFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("not a CT log list v3: %w", err)
	}
	out := &List{Version: ll.Version}
	for _, op := range ll.Operators {
		for _, l := range op.Logs {
			out.Logs = append(out.Logs, newLog(op.Name, l.Description, l.LogID, l.Key, l.URL, KindRFC6962, "", l.State, l.TemporalInterval))
		}
		for _, l := range op.TiledLogs {
			origin := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(l.SubmissionURL, "https://"), "http://"), "/")
			out.Logs = append(out.Logs, newLog(op.Name, l.Description, l.LogID, l.Key, l.MonitoringURL, KindStatic, origin, l.State, l.TemporalInterval))
		}
	}
	if len(out.Logs) == 0 {
		return nil, errors.New("the list names no logs")
	}
	for i := range out.Logs {
		l := &out.Logs[i]
		if len(l.Key) == 0 || l.URL == "" {
			return nil, fmt.Errorf("log %q has no key or no URL", l.Title())
		}
		if !strings.HasSuffix(l.URL, "/") {
			l.URL += "/"
		}
	}
	return out, nil
}

func newLog(operator, description string, id, key []byte, url, kind, origin string, st *loglist3.LogStates, ti *loglist3.TemporalInterval) Log {
	l := Log{Name: shortName(description), Operator: operator, ID: base64.StdEncoding.EncodeToString(id),
		Key: key, URL: url, Kind: kind, Origin: origin}
	if st != nil {
		l.State = strings.ToLower(strings.TrimSuffix(st.LogStatus().String(), "LogStatus"))
		if st.ReadOnly != nil {
			h := st.ReadOnly.FinalTreeHead
			var root [32]byte
			copy(root[:], h.SHA256RootHash)
			l.Final = &TreeHead{Size: h.TreeSize, Root: root}
		}
	}
	if ti != nil {
		l.IntervalStart, l.End = ti.StartInclusive, ti.EndExclusive
	}
	return l
}

// shortName takes the quoted part of a description ("Google 'Argon2026h2' log" →
// Argon2026h2): the last quoted part, since operators' names have apostrophes too ("Let's
// Encrypt 'Oak2026h2'").
func shortName(description string) string {
	if j := strings.LastIndexByte(description, '\''); j > 0 {
		if i := strings.LastIndexByte(description[:j], '\''); i >= 0 && j > i+1 {
			return description[i+1 : j]
		}
	}
	return strings.TrimSpace(description)
}

// Selection is a log and whether it is followed, with the reason.
type Selection struct {
	Log
	Follow bool
	Why    string
}

// Filter narrows a selection: Only (when not empty) and Exclude name logs by short name,
// title or URL, case-insensitively.
type Filter struct {
	Only, Exclude []string
	// MaxValidity is the longest certificate lifetime considered (default MaxValidity).
	MaxValidity time.Duration
}

// Matches reports whether log l is named by pattern.
func (l *Log) Matches(pattern string) bool {
	p := strings.ToLower(strings.TrimSpace(pattern))
	return p != "" && (p == strings.ToLower(l.Name) || p == strings.ToLower(l.Title()) ||
		strings.TrimSuffix(p, "/") == strings.ToLower(strings.TrimSuffix(l.URL, "/")))
}

// Select decides which logs of the list to follow at now: those usable, qualified or read-only
// whose temporal interval can hold a certificate issued now (it ends after now and starts
// before now plus the longest validity), narrowed by f. Names in f that match no log are an
// error naming them and the logs there are.
func (list *List) Select(now time.Time, f Filter) ([]Selection, error) {
	if f.MaxValidity <= 0 {
		f.MaxValidity = MaxValidity
	}
	var unknown []string
	for _, name := range append(slices.Clone(f.Only), f.Exclude...) {
		if !slices.ContainsFunc(list.Logs, func(l Log) bool { return l.Matches(name) }) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		names := make([]string, len(list.Logs))
		for i, l := range list.Logs {
			names[i] = l.Name
		}
		return nil, fmt.Errorf("no log named %s in the log list (%s); the list has: %s",
			strings.Join(unknown, ", "), list.Source, strings.Join(names, ", "))
	}
	horizon := now.Add(f.MaxValidity)
	out := make([]Selection, 0, len(list.Logs))
	for _, l := range list.Logs {
		s := Selection{Log: l}
		switch {
		case l.State != "usable" && l.State != "qualified" && l.State != "readonly":
			s.Why = fmt.Sprintf("state %s", orUnknown(l.State))
		case !l.End.IsZero() && !l.End.After(now):
			s.Why = fmt.Sprintf("its interval ended %s", l.End.Format(time.DateOnly))
		case !l.IntervalStart.IsZero() && !l.IntervalStart.Before(horizon):
			s.Why = fmt.Sprintf("its interval starts %s, after the longest validity (%s) from now", l.IntervalStart.Format(time.DateOnly), days(f.MaxValidity))
		case len(f.Only) > 0 && !slices.ContainsFunc(f.Only, l.Matches):
			s.Why = "not in --logs"
		case slices.ContainsFunc(f.Exclude, l.Matches):
			s.Why = "in --exclude-logs"
		default:
			s.Follow = true
			s.Why = l.State
			if !l.IntervalStart.IsZero() {
				s.Why += fmt.Sprintf(", expiries %s to %s", l.IntervalStart.Format(time.DateOnly), l.End.Format(time.DateOnly))
			}
			if l.Final != nil {
				s.Why += fmt.Sprintf(", read-only: final tree size %d", l.Final.Size)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func days(d time.Duration) string {
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
