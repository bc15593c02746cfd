package rules

import (
	"golang.org/x/net/publicsuffix"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	rs := defaultRules(t)
	tests := []struct {
		in, ascii, registrable, platform string
		main                             string // the scored label
	}{
		{"WWW.Example.COM.", "www.example.com", "example.com", "", "example"},
		{"*.hp-support.com", "hp-support.com", "hp-support.com", "", "hp-support"},
		{"a.b.example.co.uk", "a.b.example.co.uk", "example.co.uk", "", "example"},
		{"hp.com-support.help", "hp.com-support.help", "com-support.help", "", "com-support"},
		{"support-hp.com.setup-fix.net", "support-hp.com.setup-fix.net", "setup-fix.net", "", "setup-fix"},
		{"hp-support-we.pages.dev", "hp-support-we.pages.dev", "hp-support-we.pages.dev", "pages.dev", "hp-support-we"},
		{"x.driverprinter.wordpress.com", "x.driverprinter.wordpress.com", "driverprinter.wordpress.com", "wordpress.com", "driverprinter"},
		{"һp-support.com", "xn--p-support-p3i.com", "xn--p-support-p3i.com", "", "xn--p-support-p3i"},
	}
	for _, tc := range tests {
		n, err := rs.Normalize(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if n.ASCII != tc.ascii || n.Registrable != tc.registrable || n.Platform != tc.platform || n.Labels[n.Main] != tc.main {
			t.Errorf("%q: got ascii %q registrable %q platform %q main %q", tc.in, n.ASCII, n.Registrable, n.Platform, n.Labels[n.Main])
		}
	}
}

func TestNormalizeIDN(t *testing.T) {
	rs := defaultRules(t)
	n, err := rs.Normalize("xn--p-support-p3i.com")
	if err != nil {
		t.Fatal(err)
	}
	if n.Unicode != "һp-support.com" || n.Text[0] != "hp-support" || !n.IDN[0] {
		t.Errorf("got unicode %q text %q idn %v", n.Unicode, n.Text[0], n.IDN[0])
	}
}

func TestNormalizeErrors(t *testing.T) {
	rs := defaultRules(t)
	tests := map[string]string{
		"":                                "empty name",
		"a..b":                            "empty label",
		".a.com":                          "empty label",
		"xn--zz.com":                      "bad punycode",
		"xn--.com":                        "bad punycode",
		"bad name.com":                    "bad character",
		"ex\x00ample.com":                 "bad character",
		strings.Repeat("a", 64) + ".com":  "limit is 63",
		strings.Repeat("a.", 130) + "com": "limit is 253",
		"\xff\xfe.com":                    "not valid UTF-8",
	}
	for in, want := range tests {
		_, err := rs.Normalize(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Normalize(%q) error = %v, want it to mention %q", in, err, want)
		}
	}
}

func TestNormalizeDoesNotAllocateForPlainNames(t *testing.T) {
	rs := defaultRules(t)
	var n Name
	normalizeInto(&n, "www.example.com", rs, nil) // warm the slices
	allocs := testing.AllocsPerRun(100, func() {
		_ = normalizeInto(&n, "mail.green-garden.de", rs, nil)
	})
	// The public suffix library's IP-address check allocates its error once per call.
	if allocs > 1 {
		t.Errorf("normalizeInto allocates %.1f times per plain name, want at most 1", allocs)
	}
}

// FuzzNormalize: hostile names never panic, and a name that normalizes has consistent parts.
func FuzzNormalize(f *testing.F) {
	for _, seed := range []string{"www.example.com", "*.hp-support.com.", "xn--p-support-p3i.com", "xn--zz.com",
		"һp-support.com", "a..b", "hp.com-support.help", "123hpcomenvy5055.blogspot.com", "ерѕоn-printer.com",
		"xn--bohe-04ad9123c.com", strings.Repeat("a", 63) + ".com", "\xff.com", "-.-", "_dmarc.example.com"} {
		f.Add(seed)
	}
	rs, err := Default()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := rs.Normalize(in)
		if err != nil {
			if _, ok := err.(*NameError); !ok {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if len(n.ASCII) > maxNameLen || !utf8.ValidString(n.ASCII) {
			t.Fatalf("ascii %q too long or invalid", n.ASCII)
		}
		if len(n.Labels) != len(n.Text) || len(n.Labels) != len(n.IDN) {
			t.Fatalf("label slices disagree: %d %d %d", len(n.Labels), len(n.Text), len(n.IDN))
		}
		if strings.Join(n.Labels, ".") != n.ASCII {
			t.Fatalf("labels %q do not make %q", n.Labels, n.ASCII)
		}
		if n.Main >= 0 && !strings.HasSuffix(n.ASCII, n.Registrable) {
			t.Fatalf("registrable %q is not a suffix of %q", n.Registrable, n.ASCII)
		}
	})
}

// FuzzScore: the whole scorer survives hostile names and keeps its invariants.
func FuzzScore(f *testing.F) {
	for _, seed := range []string{"hpprintersupportnumbers.com", "xn--bohe-04ad9123c.com", "ca-non.com", "a-b-c-d-e-f.xyz",
		"canon.net", "hp.com-support.help", "~~~~.com", "xn--80ak6aa92e.com", "1111111.com", "hpstup.com"} {
		f.Add(seed)
	}
	rs, err := Default()
	if err != nil {
		f.Fatal(err)
	}
	sc := rs.NewScorer()
	f.Fuzz(func(t *testing.T, in string) {
		r := sc.Score(in)
		if r.Score < 0 || r.Score > 100 {
			t.Fatalf("score %d out of range", r.Score)
		}
		if (r.Verdict == VerdictInvalid) != (r.Error != "") {
			t.Fatalf("verdict %s with error %q", r.Verdict, r.Error)
		}
	})
}

func TestPublicSuffixCacheAgreesWithTheList(t *testing.T) {
	cache := pslCache{}
	names := append(realisticMix(3000), "www.example.co.uk", "example.co.uk", "a.b.blogspot.com", "blogspot.com",
		"x.www.ck", "www.ck", "a.b.ck", "foo.city.kawasaki.jp", "city.kawasaki.jp", "a.pvt.k12.ma.us", "k12.ma.us", "com", "1.2.3.4")
	for round := 0; round < 2; round++ { // the second round answers from the cache
		for _, n := range names {
			want, _ := publicsuffix.PublicSuffix(n)
			if got := publicSuffix(n, cache); got != want {
				t.Errorf("%s: cached suffix %q, the list says %q", n, got, want)
			}
		}
	}
	if len(cache) == 0 {
		t.Error("nothing was cached")
	}
}
