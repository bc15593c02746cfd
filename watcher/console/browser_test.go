package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/helpwatch/helpwatch/watcher/store"
	"github.com/helpwatch/helpwatch/watcher/testkit"
)

// browser starts headless Chromium for the test (our own pages and one test page standing for
// another site; --no-sandbox is for root in CI, as the report test's browser).
func browser(t *testing.T) context.Context {
	t.Helper()
	testkit.NeedBrowser(t)
	bin, err := exec.LookPath("chromium-headless-shell")
	if err != nil {
		bin, _ = exec.LookPath("chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	ctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTime)
	return ctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

func signInWith(t *testing.T, ctx context.Context, base, name, password string) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.CSS(`input[name=name]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), name), chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password))
	submit(t, ctx, `form.login button`)
}

// submit clicks a form's button and waits until the page it leads to has loaded (the old
// document carries a mark the new one lacks).
func submit(t *testing.T, ctx context.Context, button string) {
	t.Helper()
	eval[bool](t, ctx, `window.__before = true`)
	do(t, ctx, chromedp.Click(chromedp.CSS(button)))
	testkit.WaitFor(t, "the page after "+button, 15*time.Second, func() bool {
		loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__before === undefined && document.readyState === 'complete'`))
		return err == nil && loaded
	})
}

// The console in a real browser: sign in; the queue lists the replayed cases and a filter
// narrows it; the case page shows the screenshot and shows an attacker's markup as text;
// labelling the case benign withdraws its abuse draft; a page of another site that posts to the
// console changes nothing; a viewer gets no action; five wrong passwords slow the next try.
// With HELPWATCH_DOCS_SCREENSHOTS=1 the queue and the case page are saved into docs/.
func TestConsoleInABrowser(t *testing.T) {
	tc := newTestConsole(t)
	ctx := browser(t)
	base := tc.srv.URL

	signInWith(t, ctx, base, "jane", accounts["jane"].password)
	do(t, ctx, chromedp.WaitVisible(chromedp.CSS(`table.queue`)))
	all := eval[int](t, ctx, `document.querySelectorAll('table.queue tbody tr a').length`)
	page, err := tc.db.Queue(context.Background(), store.QueueQuery{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if all != len(page.Rows) || all < 5 {
		t.Fatalf("the queue shows %d cases, the store has %d", all, len(page.Rows))
	}
	if os.Getenv("HELPWATCH_DOCS_SCREENSHOTS") == "1" {
		saveScreenshot(t, ctx, "console-queue.png")
	}
	brand := eval[string](t, ctx, `document.querySelector('select[name=brand] option:nth-child(2)').textContent`)
	do(t, ctx, chromedp.SetValue(chromedp.CSS(`select[name=brand]`), brand))
	submit(t, ctx, `form.filters button`)
	narrowed := eval[int](t, ctx, `document.querySelectorAll('table.queue tbody tr a').length`)
	others := eval[int](t, ctx, `[...document.querySelectorAll('table.queue tbody tr td:nth-child(2)')].filter(td => !td.textContent.toLowerCase().startsWith(`+"`"+`${document.querySelector('select[name=brand]').value.toLowerCase()}`+"`"+`)).length`)
	if narrowed == 0 || narrowed >= all || others != 0 {
		t.Errorf("brand %s shows %d of %d cases, %d of another brand", brand, narrowed, all, others)
	}

	do(t, ctx, chromedp.Navigate(fmt.Sprintf("%s/case/%d", base, tc.caseID)), chromedp.WaitVisible(chromedp.CSS(`.shots img`)))
	testkit.WaitFor(t, "the screenshot to load", 10*time.Second, func() bool {
		return eval[int](t, ctx, `document.querySelector('.shots img').naturalWidth`) == 320
	})
	if pwned := eval[string](t, ctx, `String(document.body.getAttribute('data-pwned'))`); pwned != "null" {
		t.Errorf("attacker markup ran: %s", pwned)
	}
	text := eval[string](t, ctx, `document.body.innerText`)
	for _, want := range []string{"<script>document.body.setAttribute('data-pwned','title')</script>", "HP <script>", "first certificate in CT", "drafted"} {
		if !strings.Contains(text, want) {
			t.Errorf("the case page does not show %q as text", want)
		}
	}
	if n := eval[int](t, ctx, `document.scripts.length`); n != 0 {
		t.Errorf("%d script elements on the case page", n)
	}
	if os.Getenv("HELPWATCH_DOCS_SCREENSHOTS") == "1" {
		saveScreenshot(t, ctx, "console-case.png")
	}

	do(t, ctx, chromedp.SetValue(chromedp.CSS(`select[name=label]`), "benign"), chromedp.SendKeys(chromedp.CSS(`input[name=note]`), "the brand's own reseller"))
	submit(t, ctx, `form[action$="/label"] button`)
	if tc.latestLabel(t) != "benign" || tc.reportState(t) != store.ReportWithdrawn {
		t.Errorf("after labelling benign: label %q, draft %s", tc.latestLabel(t), tc.reportState(t))
	}
	if !strings.Contains(eval[string](t, ctx, `document.body.innerText`), "labelled benign · by jane") {
		t.Errorf("the timeline does not name who labelled")
	}

	// Another site's page posts a scam label to the console as soon as it loads; the browser
	// holds jane's session.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<html><body><form id="f" method="post" action="%s/case/%d/label"><input name="label" value="scam"></form>
<script>document.getElementById('f').submit()</script></body></html>`, base, tc.caseID)
	}))
	defer evil.Close()
	do(t, ctx, chromedp.Navigate(strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)))
	testkit.WaitFor(t, "the other site's form to be posted", 10*time.Second, func() bool {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		return strings.HasPrefix(loc, base)
	})
	if tc.latestLabel(t) != "benign" {
		t.Errorf("a page of another site labelled the case %s", tc.latestLabel(t))
	}

	// A viewer, in a browser context of its own, sees no actions.
	viewer, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancel()
	signInWith(t, viewer, base, "vic", accounts["vic"].password)
	do(t, viewer, chromedp.Navigate(fmt.Sprintf("%s/case/%d", base, tc.caseID)), chromedp.WaitVisible(chromedp.CSS(`h1`)))
	if n := eval[int](t, viewer, `document.querySelectorAll('form[method=post]:not([action="/logout"])').length`); n != 0 {
		t.Errorf("a viewer is shown %d action forms", n)
	}

	// Five wrong passwords; the sixth try waits, even with the right password.
	guest, cancelGuest := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancelGuest()
	for i := 0; i < 5; i++ {
		signInWith(t, guest, base, "jane", fmt.Sprintf("not the password %d", i))
	}
	signInWith(t, guest, base, "jane", accounts["jane"].password)
	if msg := eval[string](t, guest, `document.body.innerText`); !strings.Contains(msg, "Too many failed sign-ins") {
		t.Errorf("after five wrong passwords the sign-in page says %q", msg)
	}
}

func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
