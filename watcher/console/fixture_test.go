package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/internal/fixture"
	"github.com/helpwatch/helpwatch/watcher/store"
)

const fixtureStream = "../../testdata/report_fixture.jsonl"

// The accounts of the tests; passwords are long enough for HashPassword.
var accounts = map[string]struct{ role, password string }{
	"jane": {store.RoleAnalyst, "jane's long password"},
	"vic":  {store.RoleViewer, "vic's long password!"},
}

// hostileTitle is a page title an attacker wrote: shown as text, never run.
const hostileTitle = `Setup <script>document.body.setAttribute('data-pwned','title')</script><img src=x onerror="document.body.setAttribute('data-pwned','img')">`

// testConsole is a console over the replayed and enriched fixture, with a capture (and its
// screenshot) and a drafted abuse report for hp-printer-setup-help.com, on a clock the test
// moves.
type testConsole struct {
	db     *store.SQL
	srv    *httptest.Server
	server *Server
	caseID int64
	report int64
	shot   string

	mu  sync.Mutex
	now time.Time
}

func (tc *testConsole) clock() time.Time {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.now
}

func (tc *testConsole) advance(d time.Duration) {
	tc.mu.Lock()
	tc.now = tc.now.Add(d)
	tc.mu.Unlock()
}

func newTestConsole(t testing.TB) *testConsole {
	t.Helper()
	ctx := context.Background()
	db, _ := fixture.FilledStore(t, fixtureStream)
	tc := &testConsole{db: db, now: fixture.Enriched.Add(time.Hour)}
	for name, a := range accounts {
		hash, err := HashPassword(a.password)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.AddUser(ctx, store.User{Name: name, Role: a.role, PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
	}
	c, ok, err := db.Case(ctx, "hp-printer-setup-help.com")
	if err != nil || !ok {
		t.Fatalf("fixture case: %v %v", ok, err)
	}
	tc.caseID = c.ID
	shot := screenshot(t)
	sum := sha256.Sum256(shot)
	tc.shot = hex.EncodeToString(sum[:])
	capture := &watcher.Capture{CaseID: c.ID, Name: c.Registrable, At: fixture.Enriched.Add(30 * time.Minute), Verdict: rules.SiteHelpline,
		Shots: []watcher.Shot{{Profile: "mobile-from-search", URL: "https://hp-printer-setup-help.com/", Status: 200, Address: "192.0.2.10",
			Title: hostileTitle, Verdict: rules.SiteHelpline, Screenshot: tc.shot, Indicators: []string{}, Phones: []rules.SitePhone{}}}}
	if err := db.SaveCapture(ctx, nil, capture, []store.Artefact{{SHA256: tc.shot, MediaType: "image/png", Data: shot}}); err != nil {
		t.Fatal(err)
	}
	rep := &store.AbuseReport{CaseID: c.ID, Destination: store.DestRegistrar, Registrar: "Example Registrar", Recipient: "abuse@registrar.test",
		MessageID: "<draft-1@helpwatch>", AbuseType: "phishing", PreparedAt: fixture.Enriched.Add(40 * time.Minute), Names: []string{c.Registrable}}
	if err := db.RecordAbuseReport(ctx, rep); err != nil {
		t.Fatal(err)
	}
	tc.report = rep.ID
	// An attacker's page title in the latest site check too.
	if _, err := db.DB().ExecContext(ctx, `UPDATE cases SET brand = $1 WHERE id = $2`, "HP <script>document.body.setAttribute('data-pwned','brand')</script>", c.ID); err != nil {
		t.Fatal(err)
	}
	tc.server = &Server{Store: db, Now: tc.clock}
	tc.srv = httptest.NewServer(tc.server.Handler())
	t.Cleanup(tc.srv.Close)
	return tc
}

// screenshot is a small PNG with a band, as a capture's.
func screenshot(t testing.TB) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 320, 200))
	for y := 0; y < 200; y++ {
		for x := 0; x < 320; x++ {
			c := color.RGBA{240, 240, 240, 255}
			if y < 24 {
				c = color.RGBA{20, 20, 20, 255}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// client is a cookie-keeping HTTP client that does not follow redirects (a test reads them).
func client(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn signs c in as name and returns the response's status.
func (tc *testConsole) signIn(t testing.TB, c *http.Client, name, password string) int {
	t.Helper()
	resp, err := c.PostForm(tc.srv.URL+"/login", url.Values{"name": {name}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (tc *testConsole) latestLabel(t testing.TB) string {
	t.Helper()
	c, _, err := tc.db.CaseByID(context.Background(), tc.caseID)
	if err != nil {
		t.Fatal(err)
	}
	if c.Label == nil {
		return ""
	}
	return string(c.Label.Label)
}

func (tc *testConsole) reportState(t testing.TB) string {
	t.Helper()
	r, _, err := tc.db.AbuseReportByID(context.Background(), tc.report)
	if err != nil {
		t.Fatal(err)
	}
	return r.State
}

func contains(body []byte, s string) bool { return strings.Contains(string(body), s) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func sha256sum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
