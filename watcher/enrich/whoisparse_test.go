package enrich

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	whoisparser "github.com/likexian/whois-parser"

	"github.com/helpwatch/helpwatch/watcher"
)

// TestWHOISParserOnRealSamples reads every real WHOIS answer in the shared likexian corpus that
// has an expected parse, runs it through the same parsing the WHOIS lookup uses, and reports how
// many give the expected registrar and creation date.
func TestWHOISParserOnRealSamples(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "data", "whois", "likexian_whois-parser", "testdata", "noterror")
	expected, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(expected) == 0 {
		t.Skipf("shared WHOIS samples not available in %s", dir)
	}
	var samples, withRegistrar, registrarOK, withCreated, createdOK, withAbuse, abuseOK int
	var misses []string
	for _, exp := range expected {
		raw, err := os.ReadFile(strings.TrimSuffix(exp, ".json"))
		if err != nil {
			continue // an expectation without its answer
		}
		var want struct {
			Domain *struct {
				CreatedDate       string `json:"created_date"`
				CreatedDateInTime string `json:"created_date_in_time"`
			} `json:"domain"`
			Registrar *struct {
				Name         string `json:"name"`
				Organization string `json:"organization"`
			} `json:"registrar"`
		}
		if err := json.Unmarshal(mustRead(t, exp), &want); err != nil {
			t.Fatalf("%s: %v", exp, err)
		}
		samples++
		var reg watcher.Registration
		info, perr := whoisparser.Parse(string(raw))
		if perr == nil {
			fillFromWHOIS(&reg, &info, string(raw))
		}
		name := filepath.Base(exp)
		if reAbuseLine.Match(raw) {
			withAbuse++
			if strings.Contains(reg.AbuseEmail, "@") {
				abuseOK++
			} else {
				misses = append(misses, name+": abuse e-mail not found")
			}
		}
		if want.Registrar != nil && (want.Registrar.Name != "" || want.Registrar.Organization != "") {
			withRegistrar++
			wantName := want.Registrar.Name
			if wantName == "" {
				wantName = want.Registrar.Organization
			}
			if reg.Registrar == wantName {
				registrarOK++
			} else {
				misses = append(misses, name+": registrar "+reg.Registrar+" != "+wantName)
			}
		}
		if want.Domain != nil && want.Domain.CreatedDateInTime != "" {
			withCreated++
			wantTime, err := time.Parse(time.RFC3339Nano, want.Domain.CreatedDateInTime)
			if err == nil && reg.Created.Equal(wantTime) {
				createdOK++
			} else {
				misses = append(misses, name+": created "+reg.Created.String()+" != "+want.Domain.CreatedDateInTime)
			}
		}
	}
	t.Logf("%d real WHOIS answers with an expected parse: registrar right in %d of %d, creation date right in %d of %d, "+
		"abuse e-mail found in %d of the %d that show one", samples, registrarOK, withRegistrar, createdOK, withCreated, abuseOK, withAbuse)
	for _, m := range misses {
		t.Log("  miss: " + m)
	}
	if samples < 50 || float64(registrarOK) < 0.9*float64(withRegistrar) || float64(createdOK) < 0.9*float64(withCreated) {
		t.Errorf("below 90%%: registrar %d/%d, created %d/%d", registrarOK, withRegistrar, createdOK, withCreated)
	}
}

// reAbuseLine finds answers that show an abuse address on a labelled line.
var reAbuseLine = regexp.MustCompile(`(?im)^[^\n]*abuse[^\n:]*:\s*\S+@\S+`)

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
