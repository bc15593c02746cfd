// Package console is the analysts' web console (`helpwatch serve`): the triage queue, a page
// per case with its evidence and timeline, the actions (label, approve or hold abuse drafts,
// re-check a site), campaigns and the pipeline's status, over the same store as every command.
//
// Access: every page needs an account (store users, passwords as argon2id); sessions live in
// the store as hashes of their tokens, in HttpOnly, SameSite=Strict cookies (Secure over TLS);
// every state change is refused from another origin (http.CrossOriginProtection) and needs the
// analyst role or above, and is written to the audit log with who made it; logins are slowed
// per account and per address after failures. Pages are html/template with no script at all,
// under a Content-Security-Policy that allows none; captured pages are never rendered, only
// their screenshots (served as images) and text.
//
// Server.Handler is the console.
package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
)

// Store is what the console reads and changes; *store.SQL implements it.
type Store interface {
	UserByName(ctx context.Context, name string) (*store.User, bool, error)
	CreateSession(ctx context.Context, tokenHash, user string, expires time.Time) error
	SessionUser(ctx context.Context, tokenHash string, now time.Time) (*store.User, bool, error)
	DeleteSession(ctx context.Context, tokenHash string) error
	Audit(ctx context.Context, e store.AuditEntry) error
	AuditLog(ctx context.Context, target string, limit int) ([]store.AuditEntry, error)

	Queue(ctx context.Context, q store.QueueQuery) (store.QueuePage, error)
	Brands(ctx context.Context) ([]string, error)
	CaseByID(ctx context.Context, id int64) (*watcher.Case, bool, error)
	Captures(ctx context.Context, caseID int64) ([]watcher.Capture, error)
	Artefact(ctx context.Context, sha string) (*store.Artefact, bool, error)
	SharedWith(ctx context.Context, caseID int64) (map[string][]string, error)
	LabelHistory(ctx context.Context, registrable string) ([]store.Label, error)
	AbuseReports(ctx context.Context, caseID int64) ([]*store.AbuseReport, error)
	ReportEvents(ctx context.Context, id int64) ([]store.ReportEvent, error)
	AbuseReportByID(ctx context.Context, id int64) (*store.AbuseReport, bool, error)
	Campaigns(ctx context.Context) ([]store.Campaign, error)
	LogPositions(ctx context.Context) ([]watcher.LogPosition, error)
	JobStats(ctx context.Context, now time.Time) ([]store.KindStats, error)
	JobProblems(ctx context.Context, limit int) ([]store.JobProblem, error)

	AddLabel(ctx context.Context, l store.Label) error
	SetReportState(ctx context.Context, id int64, state, actor, note string, at time.Time, deliver bool) error
	RequestSiteCheck(ctx context.Context, caseID int64) error
}

// Server is the console.
type Server struct {
	Store Store
	Log   *slog.Logger
	// TLS: the console is served over TLS, so cookies are Secure.
	TLS bool
	// TrustedProxies may set X-Forwarded-For (the address logins are limited by and the audit
	// log names) and IdentityHeader.
	TrustedProxies []netip.Prefix
	// IdentityHeader, when set, names the header in which a trusted proxy (single sign-on)
	// gives the signed-in account's name; the account must exist and be enabled. Requests
	// from elsewhere carrying it are refused.
	IdentityHeader string
	// SessionTTL: how long a session lasts (default 12 h).
	SessionTTL time.Duration
	// Deliverable says whether approved reports to a destination are delivered by helpwatch
	// (abuse.Delivered); nil: all are.
	Deliverable func(destination string) bool
	Now         func() time.Time

	once    sync.Once
	pages   *template.Template
	limiter *limiter
}

//go:embed assets
var assets embed.FS

const sessionCookie = "helpwatch_session"

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Server) init() {
	s.once.Do(func() {
		s.pages = template.Must(template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html"))
		s.limiter = newLimiter()
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
	})
}

// Handler is the console: every route behind the security headers, the cross-origin check
// and the session.
func (s *Server) Handler() http.Handler {
	s.init()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /static/style.css", s.style)
	mux.Handle("GET /{$}", s.need(store.RoleViewer, s.queue))
	mux.Handle("GET /case/{id}", s.need(store.RoleViewer, s.casePage))
	mux.Handle("GET /artefact/{sha}", s.need(store.RoleViewer, s.artefact))
	mux.Handle("GET /campaigns", s.need(store.RoleViewer, s.campaigns))
	mux.Handle("GET /status", s.need(store.RoleViewer, s.status))
	mux.Handle("POST /case/{id}/label", s.need(store.RoleAnalyst, s.label))
	mux.Handle("POST /case/{id}/recheck", s.need(store.RoleAnalyst, s.recheck))
	mux.Handle("POST /report/{id}/{action}", s.need(store.RoleAnalyst, s.reportAction))
	protect := http.NewCrossOriginProtection()
	protect.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Log.Warn("console: cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "from", s.clientAddr(r))
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
	}))
	return securityHeaders(protect.Handler(mux))
}

// securityHeaders: no script, no frame, no outside resource; nothing cached.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

type userKey struct{}

func userOf(r *http.Request) *store.User {
	u, _ := r.Context().Value(userKey{}).(*store.User)
	return u
}

// need lets a request through with a session (or a trusted proxy's identity) of at least role.
// Without one, a page request goes to the login page and anything else is refused.
func (s *Server) need(role string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if u == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login", http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if store.RoleRank(u.Role) < store.RoleRank(role) {
			s.Log.Warn("console: refused by role", "user", u.Name, "role", u.Role, "path", r.URL.Path)
			http.Error(w, fmt.Sprintf("your role (%s) cannot do this: it needs %s", u.Role, role), http.StatusForbidden)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

func (s *Server) authenticate(r *http.Request) (*store.User, error) {
	if s.IdentityHeader != "" {
		if name := r.Header.Get(s.IdentityHeader); name != "" {
			if !s.fromTrustedProxy(r) {
				return nil, nil
			}
			u, ok, err := s.Store.UserByName(r.Context(), name)
			if err != nil || !ok || u.Disabled {
				return nil, err
			}
			return u, nil
		}
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 100 {
		return nil, nil
	}
	u, ok, err := s.Store.SessionUser(r.Context(), tokenHash(c.Value), s.now())
	if err != nil || !ok {
		return nil, err
	}
	return u, nil
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func (s *Server) fromTrustedProxy(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	for _, p := range s.TrustedProxies {
		if p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

// clientAddr is the address a request came from: the connection's, or the last address a
// trusted proxy added to X-Forwarded-For.
func (s *Server) clientAddr(r *http.Request) string {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if s.fromTrustedProxy(r) {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			if a, err := netip.ParseAddr(strings.TrimSpace(parts[len(parts)-1])); err == nil {
				return a.String()
			}
		}
	}
	return host
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, "login", map[string]any{"Title": "Sign in"})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	name, password := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("password")
	addr := s.clientAddr(r)
	now := s.now()
	if wait := s.limiter.wait(now, "user:"+name, "addr:"+addr); wait > 0 {
		secs := int(wait.Round(time.Second) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(max(secs, 1)))
		w.WriteHeader(http.StatusTooManyRequests)
		s.render(w, r, "login", map[string]any{"Title": "Sign in", "Name": name,
			"Error": fmt.Sprintf("Too many failed sign-ins for this account or address: try again in %d s.", max(secs, 1))})
		return
	}
	u, ok, err := s.Store.UserByName(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	good := false
	if ok && !u.Disabled {
		good, _ = CheckPassword(u.PasswordHash, password)
	} else {
		// The same work for an unknown account, so timing does not tell which names exist.
		_, _ = CheckPassword(dummyHash, password)
	}
	if !good {
		s.limiter.failed(now, "user:"+name, "addr:"+addr)
		s.Log.Warn("console: sign-in failed", "user", name, "from", addr)
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, r, "login", map[string]any{"Title": "Sign in", "Name": name, "Error": "Wrong account name or password, or the account is disabled."})
		return
	}
	// Only the account's count is cleared: an address spraying names must not clear its own
	// by signing in to an account it holds now and then.
	s.limiter.succeeded("user:" + name)
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		s.fail(w, r, err)
		return
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	ttl := s.SessionTTL
	if ttl <= 0 {
		ttl = 12 * time.Hour
	}
	if err := s.Store.CreateSession(r.Context(), tokenHash(token), u.Name, now.Add(ttl)); err != nil {
		s.fail(w, r, err)
		return
	}
	_ = s.Store.Audit(r.Context(), store.AuditEntry{At: now, Actor: u.Name, Action: "sign-in", Address: addr})
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: s.secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: int(ttl / time.Second)})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// secure says whether the browser reached the console over TLS: served with TLS, or through a
// trusted proxy that says it terminated TLS.
func (s *Server) secure(r *http.Request) bool {
	return s.TLS || r.TLS != nil || s.fromTrustedProxy(r) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// dummyHash is checked against when the account does not exist.
var dummyHash, _ = HashPassword("not the password of anyone")

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" && len(c.Value) <= 100 {
		_ = s.Store.DeleteSession(r.Context(), tokenHash(c.Value))
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.secure(r), SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) style(w http.ResponseWriter, r *http.Request) {
	data, _ := assets.ReadFile("assets/style.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Write(data)
}

// render writes a page; data is a map the page and the layout read.
func (s *Server) render(w http.ResponseWriter, r *http.Request, page string, data map[string]any) {
	data["User"] = userOf(r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := s.pages.ExecuteTemplate(w, page, data); err != nil {
		s.Log.Error("console: rendering", "page", page, "err", err)
	}
}

// fail answers a store error: logged with the request, a plain message to the user.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.Log.Error("console", "path", r.URL.Path, "err", err)
	http.Error(w, "the store could not answer: "+err.Error(), http.StatusInternalServerError)
}

// limiter slows sign-ins down per account and per address: after 5 failures within 15
// minutes, each further attempt waits twice as long as the last (1 s, 2 s, ... up to 15 min).
type limiter struct {
	mu   sync.Mutex
	keys map[string]*attempts
}

type attempts struct {
	failures int
	first    time.Time
	until    time.Time
}

const (
	freeFailures = 5
	failWindow   = 15 * time.Minute
	maxLockout   = 15 * time.Minute
	limiterKeys  = 100000 // bound: an attacker cycling names must not grow it for ever
)

func newLimiter() *limiter { return &limiter{keys: map[string]*attempts{}} }

// wait is how long the keys must still wait before another attempt.
func (l *limiter) wait(now time.Time, keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var longest time.Duration
	for _, k := range keys {
		if a := l.keys[k]; a != nil && a.until.After(now) {
			longest = max(longest, a.until.Sub(now))
		}
	}
	return longest
}

func (l *limiter) failed(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.keys) > limiterKeys {
		for k, a := range l.keys {
			if now.Sub(a.first) > failWindow && !a.until.After(now) {
				delete(l.keys, k)
			}
		}
	}
	for _, k := range keys {
		a := l.keys[k]
		if a == nil || now.Sub(a.first) > failWindow && !a.until.After(now) {
			a = &attempts{first: now}
			l.keys[k] = a
		}
		a.failures++
		if a.failures >= freeFailures {
			a.until = now.Add(min(time.Second<<min(a.failures-freeFailures, 20), maxLockout))
		}
	}
}

func (l *limiter) succeeded(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.keys, k)
	}
}
