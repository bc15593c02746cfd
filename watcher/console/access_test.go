package console

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store"
)

func get(t *testing.T, c *http.Client, u string) (int, []byte) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// No page and no change without an account: a request without a session is sent to the login
// page or refused, and nothing is labelled.
func TestNothingWithoutASession(t *testing.T) {
	tc := newTestConsole(t)
	c := client(t)
	for _, path := range []string{"/", "/case/1", "/status", "/campaigns", "/artefact/" + tc.shot} {
		code, _ := get(t, c, tc.srv.URL+path)
		if code != http.StatusSeeOther {
			t.Errorf("GET %s without a session: %d, want a redirect to the login page", path, code)
		}
	}
	resp, err := c.PostForm(tc.srv.URL+"/case/"+itoa(tc.caseID)+"/label", url.Values{"label": {"benign"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || tc.latestLabel(t) != "" {
		t.Errorf("label without a session: %d, label now %q", resp.StatusCode, tc.latestLabel(t))
	}
	// A forged cookie is no session either.
	forged, _ := http.NewRequest(http.MethodGet, tc.srv.URL+"/", nil)
	forged.AddCookie(&http.Cookie{Name: sessionCookie, Value: strings.Repeat("A", 43)})
	if resp, err := c.Do(forged); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Errorf("forged session: %v %v", resp.StatusCode, err)
	}
}

// A viewer reads everything and changes nothing; an analyst's change is recorded with the
// analyst's name; signing out ends the session in the store.
func TestRolesAndAudit(t *testing.T) {
	tc := newTestConsole(t)
	viewer := client(t)
	if code := tc.signIn(t, viewer, "vic", accounts["vic"].password); code != http.StatusSeeOther {
		t.Fatalf("viewer sign-in: %d", code)
	}
	code, body := get(t, viewer, tc.srv.URL+"/case/"+itoa(tc.caseID))
	if code != 200 || !contains(body, "hp-printer-setup-help.com") || contains(body, "/label\"") {
		t.Errorf("viewer's case page: %d, label form shown: %v", code, contains(body, "/label\""))
	}
	for path, form := range map[string]url.Values{
		"/case/" + itoa(tc.caseID) + "/label":     {"label": {"benign"}},
		"/case/" + itoa(tc.caseID) + "/recheck":   {},
		"/report/" + itoa(tc.report) + "/approve": {},
	} {
		resp, err := viewer.PostForm(tc.srv.URL+path, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer POST %s: %d, want 403", path, resp.StatusCode)
		}
	}
	if tc.latestLabel(t) != "" || tc.reportState(t) != store.ReportDrafted {
		t.Errorf("a viewer changed something: label %q, report %s", tc.latestLabel(t), tc.reportState(t))
	}

	analyst := client(t)
	tc.signIn(t, analyst, "jane", accounts["jane"].password)
	resp, err := analyst.PostForm(tc.srv.URL+"/report/"+itoa(tc.report)+"/approve", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || tc.reportState(t) != store.ReportApproved {
		t.Errorf("approve: %d, report %s", resp.StatusCode, tc.reportState(t))
	}
	audit, err := tc.db.AuditLog(context.Background(), "case:hp-printer-setup-help.com", 10)
	if err != nil || len(audit) != 1 || audit[0].Actor != "jane" || audit[0].Action != "approve" || audit[0].Address != "127.0.0.1" {
		t.Errorf("audit log: %+v %v", audit, err)
	}
	ev, _ := tc.db.ReportEvents(context.Background(), tc.report)
	if last := ev[len(ev)-1]; last.State != store.ReportApproved || last.Actor != "jane" {
		t.Errorf("report step %+v", last)
	}

	resp, err = analyst.PostForm(tc.srv.URL+"/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _ := get(t, analyst, tc.srv.URL+"/"); code != http.StatusSeeOther {
		t.Errorf("after signing out the queue answers %d", code)
	}
}

// A state change from another origin is refused even with a valid session (the browser test
// does it from a real page too); security headers are on every answer.
func TestCrossOriginChangeRefused(t *testing.T) {
	tc := newTestConsole(t)
	c := client(t)
	tc.signIn(t, c, "jane", accounts["jane"].password)
	for _, h := range []http.Header{{"Sec-Fetch-Site": {"cross-site"}}, {"Origin": {"https://evil.example"}}} {
		req, _ := http.NewRequest(http.MethodPost, tc.srv.URL+"/case/"+itoa(tc.caseID)+"/label", strings.NewReader("label=benign"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST with %v: %d, want 403", h, resp.StatusCode)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("CSP %q", csp)
		}
	}
	if tc.latestLabel(t) != "" {
		t.Errorf("a cross-origin request labelled the case %s", tc.latestLabel(t))
	}
}

// Five wrong passwords slow the account and the address down: the sixth attempt, even with
// the right password, waits (429 with Retry-After), and the wait grows; once it has passed,
// the right password signs in. The clock is the test's.
func TestSignInSlowedAfterFailures(t *testing.T) {
	tc := newTestConsole(t)
	c := client(t)
	for i := 0; i < 5; i++ {
		if code := tc.signIn(t, c, "jane", "wrong password "+itoa(int64(i))); code != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i, code)
		}
	}
	resp, err := c.PostForm(tc.srv.URL+"/login", url.Values{"name": {"jane"}, "password": {accounts["jane"].password}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !contains(body, "Too many failed sign-ins") {
		t.Fatalf("sixth attempt: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Another account from the same address waits too (the address is limited as well).
	if code := tc.signIn(t, client(t), "vic", accounts["vic"].password); code != http.StatusTooManyRequests {
		t.Errorf("another account from the same address: %d, want 429", code)
	}
	tc.advance(2 * time.Second)
	if code := tc.signIn(t, c, "jane", "wrong again, longer wait"); code != http.StatusUnauthorized {
		t.Fatalf("after the wait, a wrong password: %d", code)
	}
	if code := tc.signIn(t, c, "jane", accounts["jane"].password); code != http.StatusTooManyRequests {
		t.Errorf("right after a seventh failure: %d, want 429", code)
	}
	tc.advance(5 * time.Second)
	if code := tc.signIn(t, c, "jane", accounts["jane"].password); code != http.StatusSeeOther {
		t.Errorf("after the wait, the right password: %d", code)
	}
}

// A disabled account's session ends, and it cannot sign in.
func TestDisabledAccount(t *testing.T) {
	tc := newTestConsole(t)
	c := client(t)
	tc.signIn(t, c, "jane", accounts["jane"].password)
	if err := tc.db.SetUserDisabled(context.Background(), "jane", true); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, c, tc.srv.URL+"/"); code != http.StatusSeeOther {
		t.Errorf("disabled account's session still answers %d", code)
	}
	if code := tc.signIn(t, client(t), "jane", accounts["jane"].password); code != http.StatusUnauthorized {
		t.Errorf("disabled account signs in: %d", code)
	}
}

// Only screenshots are served from the artefacts: a stored page (HTML an attacker wrote) is not.
func TestOnlyScreenshotsServed(t *testing.T) {
	tc := newTestConsole(t)
	page := []byte("<html><script>alert(1)</script></html>")
	sum := sha256sum(page)
	capture := &watcher.Capture{CaseID: tc.caseID, Name: "hp-printer-setup-help.com", At: tc.clock(), Verdict: rules.SiteHelpline,
		Shots: []watcher.Shot{{Profile: "desktop", HTML: sum, Verdict: rules.SiteHelpline, Indicators: []string{}, Phones: []rules.SitePhone{}}}}
	if err := tc.db.SaveCapture(context.Background(), nil, capture, []store.Artefact{{SHA256: sum, MediaType: "text/html", Data: page}}); err != nil {
		t.Fatal(err)
	}
	c := client(t)
	tc.signIn(t, c, "vic", accounts["vic"].password)
	if code, _ := get(t, c, tc.srv.URL+"/artefact/"+sum); code != http.StatusNotFound {
		t.Errorf("a stored page is served: %d", code)
	}
	resp, err := c.Get(tc.srv.URL + "/artefact/" + tc.shot)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("screenshot: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// Single sign-on behind a reverse proxy: the identity header is believed only from a trusted
// proxy, and only for an existing, enabled account; no account is created on the way.
func TestIdentityHeaderOnlyFromTrustedProxy(t *testing.T) {
	tc := newTestConsole(t)
	var base string
	serve := func(trusted ...netip.Prefix) {
		srv := httptest.NewServer((&Server{Store: tc.db, Now: tc.clock, IdentityHeader: "X-Remote-User", TrustedProxies: trusted}).Handler())
		t.Cleanup(srv.Close)
		base = srv.URL
	}
	serve()
	ask := func(user string) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Header.Set("X-Remote-User", user)
		resp, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := ask("jane"); code != http.StatusSeeOther {
		t.Errorf("identity header from an untrusted address: %d", code)
	}
	serve(netip.MustParsePrefix("127.0.0.1/32"))
	if code := ask("jane"); code != 200 {
		t.Errorf("identity header from the trusted proxy: %d", code)
	}
	if code := ask("mallory"); code != http.StatusSeeOther {
		t.Errorf("an unknown account through the proxy: %d", code)
	}
	if u, ok, _ := tc.db.UserByName(context.Background(), "mallory"); ok {
		t.Errorf("an account was created: %+v", u)
	}
}

// The session cookie is HttpOnly and SameSite=Strict, and Secure when the browser came over
// TLS: through a trusted proxy that says so, not when anyone else says so.
func TestSessionCookieFlags(t *testing.T) {
	tc := newTestConsole(t)
	cookie := func(trusted bool, proto string) *http.Cookie {
		s := &Server{Store: tc.db, Now: tc.clock}
		if trusted {
			s.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		}
		srv := httptest.NewServer(s.Handler())
		defer srv.Close()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(url.Values{"name": {"vic"}, "password": {accounts["vic"].password}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-Proto", proto)
		resp, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			if c.Name == sessionCookie {
				return c
			}
		}
		t.Fatalf("no session cookie (%d)", resp.StatusCode)
		return nil
	}
	plain := cookie(false, "https")
	if !plain.HttpOnly || plain.SameSite != http.SameSiteStrictMode || plain.Secure {
		t.Errorf("cookie over plain HTTP from anyone: %+v", plain)
	}
	if proxied := cookie(true, "https"); !proxied.Secure {
		t.Errorf("cookie behind a TLS proxy is not Secure: %+v", proxied)
	}
}

// A queue filter that is not one of the known values is refused with the value named (400),
// not passed to the store.
func TestQueueRefusesUnknownFilters(t *testing.T) {
	tc := newTestConsole(t)
	c := client(t)
	tc.signIn(t, c, "vic", accounts["vic"].password)
	for query, want := range map[string]string{"campaign=nonsense": "nonsense", "verdict=evil": "evil", "since=yesterday": "yesterday"} {
		code, body := get(t, c, tc.srv.URL+"/?"+query)
		if code != http.StatusBadRequest || !contains(body, want) {
			t.Errorf("%s: %d", query, code)
		}
	}
}
