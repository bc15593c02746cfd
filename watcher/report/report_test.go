package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/internal/fixture"
	"github.com/helpwatch/helpwatch/watcher/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/report")

const fixtureStream = "../../testdata/report_fixture.jsonl"

// reportFromPipeline fills a store through the pipeline and enrichment, then makes two
// reports: a first one (recorded), then a day later, after liveness checks and an abuse report
// with a takedown, the one the tests look at.
func reportFromPipeline(t *testing.T) *Report {
	t.Helper()
	db, _ := fixture.FilledStore(t, fixtureStream)
	ctx := context.Background()
	seen := fixture.Seen
	if _, err := Build(ctx, db, Options{From: seen.Add(-time.Hour), To: seen.Add(time.Hour), Now: seen.Add(3 * time.Hour), Record: true}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.Check{
		{Name: "canon-ij-setup-support.online", At: seen.Add(20 * time.Hour), State: store.StateSuspended, Detail: "registry status client hold"},
		{Name: "epson-printer-offline-fix.net", At: seen.Add(20 * time.Hour), State: store.StateLive, Detail: "answers on 192.0.2.99 port 443"},
		{Name: "hp-printer-setup-help.com", At: seen.Add(20 * time.Hour), State: store.StateLive, Detail: "answers on 192.0.2.10 port 443"},
	} {
		if err := db.RecordCheck(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	ar := &store.AbuseReport{MessageID: "<m1@test>", Registrar: fixture.HostileRegistrar, Recipient: "abuse@evil-registrar.test",
		File: "x.eml", PreparedAt: seen.Add(4 * time.Hour), Names: []string{"canon-ij-setup-support.online"}}
	if err := db.RecordAbuseReport(ctx, ar); err != nil {
		t.Fatal(err)
	}
	if err := db.SetReportState(ctx, ar.ID, store.ReportApproved, "jane", "", seen.Add(5*time.Hour), false); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkReportDelivered(ctx, nil, ar.ID, seen.Add(5*time.Hour), "250"); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordTakedown(ctx, ar.ID, "canon-ij-setup-support.online", seen.Add(20*time.Hour), store.StateSuspended); err != nil {
		t.Fatal(err)
	}
	rep, err := Build(ctx, db, Options{From: seen.Add(-time.Hour), To: seen.Add(25 * time.Hour), Now: seen.Add(25 * time.Hour), Record: true})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestReportGoldenFiles(t *testing.T) {
	rep := reportFromPipeline(t)
	for _, format := range Formats {
		var buf bytes.Buffer
		if err := Write(&buf, rep, format); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		golden := filepath.Join("..", "..", "testdata", "report", "daily."+format)
		if *update {
			os.MkdirAll(filepath.Dir(golden), 0o755)
			if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./watcher/report -update to create it)", err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s differs from %s (go test ./watcher/report -update rewrites it after a deliberate change):\n%s",
				format, golden, firstDiff(buf.String(), string(want)))
		}
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + a + "\nwant: " + b
		}
	}
	return ""
}

// The facts the report must show, independent of layout.
func TestReportContent(t *testing.T) {
	rep := reportFromPipeline(t)
	s := rep.Summary
	if s.Alerts+s.Watch != 6 || s.New != 0 || s.WentDark != 1 || s.CameBack != 1 || s.StillLive < 1 {
		t.Errorf("summary %+v (6 cases, none new since the first report; canon suspended, epson back)", s)
	}
	var hp *Item
	for _, sec := range rep.Sections {
		for i := range sec.Items {
			if sec.Items[i].Domain == "hp-printer-setup-help.com" {
				hp = &sec.Items[i]
			}
		}
	}
	if hp == nil {
		t.Fatal("hp finding missing")
	}
	// One case for hp-printer-setup-help.com and www.hp-printer-setup-help.com.
	if hp.Registrar != "Example Registrar, LLC" || hp.Created.IsZero() || len(hp.Addresses) != 1 || hp.Cert.Index != 500000001 ||
		hp.CertCount != 2 || hp.State != store.StateLive || !strings.Contains(strings.Join(hp.Reasons, " "), "newly registered") ||
		strings.Join(hp.Names, " ") != "hp-printer-setup-help.com www.hp-printer-setup-help.com" {
		t.Errorf("hp item %+v", hp)
	}
	if len(rep.Takedowns) != 1 || rep.Takedowns[0].TakenDown != 1 || rep.Takedowns[0].Median != 15*time.Hour {
		t.Errorf("takedowns %+v", rep.Takedowns)
	}
	if len(rep.AlertsPerDay) != 30 || rep.AlertsPerDay[29].Day != "2026-11-27" {
		t.Errorf("chart days %v", rep.AlertsPerDay)
	}
}

// Everything from outside is escaped in every format.
func TestReportEscapesHostileFields(t *testing.T) {
	rep := reportFromPipeline(t)
	render := func(format string) string {
		var buf bytes.Buffer
		if err := Write(&buf, rep, format); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	html := render("html")
	for _, bad := range []string{"<script>document", "<img src=x", "\r\nBcc:", "href=\"javascript"} {
		if strings.Contains(html, bad) {
			t.Errorf("HTML contains %q unescaped", bad)
		}
	}
	if !strings.Contains(html, "&lt;img src=x") || !strings.Contains(html, "Content-Security-Policy") {
		t.Errorf("hostile issuer not shown escaped, or no CSP")
	}
	md := render("md")
	if regexp.MustCompile(`(^|[^\\])<(img|script)`).MatchString(md) || !strings.Contains(md, `\<script\>`) {
		t.Errorf("Markdown passes HTML through, or does not show it escaped")
	}
	rows, err := csv.NewReader(strings.NewReader(render("csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows[1:] {
		for _, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("CSV cell %q can run as a formula", cell)
			}
		}
	}
	var back Report
	if err := json.Unmarshal([]byte(render("json")), &back); err != nil || back.Summary != rep.Summary {
		t.Errorf("JSON does not round-trip: %v", err)
	}
}

// The HTML renders in a real browser and nothing hostile in it runs. Debian's chromium is
// installed by .ci/run; elsewhere the test says why it skips.
func TestReportHTMLInChromium(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("HELPWATCH_REQUIRE_BROWSER") == "1" {
			t.Fatal("chromium is required here (HELPWATCH_REQUIRE_BROWSER=1) but not installed")
		}
		t.Skip("chromium not installed (apt-get install chromium); skipping the browser check")
	}
	rep := reportFromPipeline(t)
	path := filepath.Join(t.TempDir(), "report.html")
	var buf bytes.Buffer
	if err := Write(&buf, rep, "html"); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, buf.Bytes(), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--virtual-time-budget=2000", "--dump-dom", "file://"+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	dom, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	page := string(dom)
	if !strings.Contains(page, "helpwatch daily report") || !strings.Contains(page, "hp-printer-setup-help.com") || !strings.Contains(page, "<svg") {
		t.Errorf("the page did not render as expected:\n%.2000s", page)
	}
	if strings.Contains(page, `data-pwned="`) {
		t.Errorf("hostile markup ran in the browser")
	}
	if !strings.Contains(page, "&lt;script&gt;document.body.setAttribute") {
		t.Errorf("the hostile registrar name is not shown as text")
	}
}

// A case an analyst labeled benign is shown as such and not counted as an alert; the report's
// period is the CT day of the certificates, whenever helpwatch read them.
func TestReportShowsLabelsAndUsesCTTime(t *testing.T) {
	db, _ := fixture.FilledStore(t, fixtureStream)
	ctx := context.Background()
	if err := db.AddLabel(ctx, store.Label{Registrable: "hp-printer-setup-help.com", Label: rules.LabelBenign, By: "jane", At: fixture.Enriched,
		Note: "the brand's reseller"}); err != nil {
		t.Fatal(err)
	}
	day := fixture.Seen.Truncate(24 * time.Hour)
	rep, err := Build(ctx, db, Options{From: day, To: day.AddDate(0, 0, 1), Now: fixture.Seen.AddDate(0, 0, 3)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Summary.Benign != 1 || rep.Summary.Alerts != 5 {
		t.Errorf("summary %+v", rep.Summary)
	}
	var md bytes.Buffer
	Write(&md, rep, "md")
	if !strings.Contains(md.String(), "hp-printer-setup-help.com (alert, 100, labeled benign by jane)") || !strings.Contains(md.String(), "the brand's reseller") {
		t.Errorf("Markdown does not show the label:\n%.3000s", md.String())
	}
	// The day before the certificates' CT day is empty.
	prev, err := Build(ctx, db, Options{From: day.AddDate(0, 0, -1), To: day, Now: fixture.Seen.AddDate(0, 0, 3)})
	if err != nil || len(prev.Sections) != 0 {
		t.Errorf("the day before: %d sections, %v", len(prev.Sections), err)
	}
}
