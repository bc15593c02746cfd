package site

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
)

// A React-style kit: the HTML is an empty shell and the scam is built by script. Raw HTML sees
// nothing; the rendered page is the clone. Runs where Debian's chromium is installed.
func TestRenderScriptBuiltKit(t *testing.T) {
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Skip("chromium not installed (apt-get install chromium); skipping the rendering check")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<!DOCTYPE html><html><head><title>Loading</title></head><body><div id="root"></div><script>
document.getElementById('root').innerHTML = '<h1>HP Smart printer setup</h1><p>Downloading driver... Connecting to server...</p>' +
  '<p>Installation failed. Error code 0x61. Call toll free <a href="tel:+18882157421">+1 (888) 215-7421</a></p>';
</script></body></html>`))
	}))
	defer srv.Close()
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Allow: onlyLocal127001, Timeout: 5 * time.Second}
	plain, _ := CheckLive(context.Background(), rs, nil, f, nil, srv.URL+"/")
	if plain.Verdict == rules.SiteClone || plain.Rendered {
		t.Fatalf("the raw shell already reads as %s", plain.Verdict)
	}
	r := &Renderer{Timeout: 45 * time.Second}
	built, _ := CheckLive(context.Background(), rs, nil, f, r, srv.URL+"/")
	if !built.Rendered || built.Verdict != rules.SiteClone || len(built.Phones) != 1 {
		t.Errorf("rendered: %s rendered=%v phones=%v error=%q", built.Verdict, built.Rendered, built.Phones, built.Error)
	}
	if !strings.Contains(strings.Join(built.Indicate, ","), "installation failed") {
		t.Errorf("indicators %v", built.Indicate)
	}
}
