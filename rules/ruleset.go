package rules

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed default_rules.yaml
var defaultRulesYAML []byte

// DefaultRulesYAML returns the embedded default rule file, for `rules show` and as a template.
func DefaultRulesYAML() []byte { return append([]byte(nil), defaultRulesYAML...) }

// RuleFile is the YAML schema of a rule file. Field names are the YAML keys.
type RuleFile struct {
	Version          string              `yaml:"version"`
	Thresholds       Thresholds          `yaml:"thresholds"`
	Rules            map[string]RuleSpec `yaml:"rules"`
	Keywords         []KeywordGroup      `yaml:"keywords"`
	PrinterWords     []string            `yaml:"printer_words"`
	PrintingWords    []string            `yaml:"printing_words"`
	TradeWords       []string            `yaml:"trade_words"`
	AbusedTLDs       []string            `yaml:"abused_tlds"`
	HostingPlatforms []string            `yaml:"hosting_platforms"`
	Vocabulary       []string            `yaml:"vocabulary"`
	Patterns         []PatternSpec       `yaml:"patterns"`
	Parking          ParkingSpec         `yaml:"parking"`
	Site             SiteSpec            `yaml:"site"`
	Brands           []BrandSpec         `yaml:"brands"`
}

// SiteSpec is the site check's data: indicator lists, points and verdict thresholds.
type SiteSpec struct {
	Thresholds struct {
		Clone    int `yaml:"clone"`
		Helpline int `yaml:"helpline"`
	} `yaml:"thresholds"`
	Points       map[string]int `yaml:"points"`
	FakeFlow     []string       `yaml:"fake_flow"`
	Problems     []string       `yaml:"problems"`
	CallToAction []string       `yaml:"call_to_action"`
	Disclaimers  []string       `yaml:"disclaimers"`
	ChatWidgets  []string       `yaml:"chat_widgets"`
	RemoteAccess []string       `yaml:"remote_access"`
	BrandCopy    []string       `yaml:"brand_copy"`
	LeadFields   []string       `yaml:"lead_fields"`
	// Support is what a page says when it sells technical support: with a phone number, a
	// chat widget or a remote-access tool and one more sign, a page is a helpline kit even
	// for no brand at all.
	Support []string `yaml:"support"`
	Parked  []string `yaml:"parked"`
	// References are the brands' genuine pages, by brand name, for `helpwatch refs update`.
	References map[string][]string `yaml:"references"`
}

// ParkingSpec names domain-parking services, for the enrichment's "parked" fact: a name whose
// name servers end in one of NameServers, or whose address is in one of Addresses (CIDR), is
// parked.
type ParkingSpec struct {
	NameServers []string `yaml:"nameservers"`
	Addresses   []string `yaml:"addresses"`
}

// Thresholds turn a score into a verdict: score >= Alert is "alert", >= Watch is "watch".
type Thresholds struct {
	Alert int `yaml:"alert"`
	Watch int `yaml:"watch"`
}

// RuleSpec sets the points of one rule kind and the reason shown for it.
type RuleSpec struct {
	Points int     `yaml:"points"`
	Why    string  `yaml:"why"`
	Max    int     `yaml:"max,omitempty"`    // cap on the total of a repeating rule
	Min    int     `yaml:"min,omitempty"`    // count from which a structural rule fires
	Factor float64 `yaml:"factor,omitempty"` // multiplier (subdomain-only)
	Days   int     `yaml:"days,omitempty"`   // age window of the registration rules
}

// KeywordGroup is a family of helpline or setup words that scores once.
type KeywordGroup struct {
	Group  string   `yaml:"group"`
	Points int      `yaml:"points"`
	Needs  string   `yaml:"needs"` // "printer" or "brand"
	Words  []string `yaml:"words"`
}

// PatternSpec is a free-form regular expression rule over the normalized name.
type PatternSpec struct {
	Name   string `yaml:"name"`
	Regex  string `yaml:"regex"`
	Points int    `yaml:"points"`
	Why    string `yaml:"why"`
}

// BrandSpec describes one impersonated brand.
type BrandSpec struct {
	Name           string   `yaml:"name"`
	Tokens         []string `yaml:"tokens"`
	CommonWord     bool     `yaml:"common_word"`   // the brand is also an ordinary word: strict token boundaries
	NeedsPrinter   bool     `yaml:"needs_printer"` // a big non-printer brand: counts only next to printer words
	NoTypos        bool     `yaml:"no_typos"`      // misspellings do not count (other names are one edit away); look-alike characters still do
	Products       []string `yaml:"products"`
	CommonProducts []string `yaml:"common_products"` // product names that are ordinary words: count only with the brand
	Owned          []string `yaml:"owned"`           // domains (or brand TLDs) the brand owns: never alert
}

// Rule kind names. They are the keys of the `rules:` map and the `rule` field of a reason.
const (
	RuleBrandToken     = "brand-token"
	RuleBrandTypo      = "brand-typo"
	RuleBrandHomoglyph = "brand-homoglyph"
	RuleBrandLabel     = "brand-label"
	// The whole name is the brand under a country's suffix (its own country site, often), or
	// under a government or academic one (a restricted registry: "hp.gov.in" is a state's).
	RuleBrandLabelCountry     = "brand-label-country"
	RuleBrandLabelInstitution = "brand-label-institution"
	RuleBrandEmbedded         = "brand-domain-embedded"
	RuleProductLine           = "product-line"
	RulePrinterWord           = "printer-word"
	RulePrintingWord          = "printing-word"
	RulePrinterTypo           = "printer-typo"
	RuleProductTypo           = "product-typo"
	RuleExtraKeyword          = "extra-keyword"
	RuleKeywordTypo           = "keyword-typo"
	RuleSubdomainOnly         = "subdomain-only"
	RuleAbusedTLD             = "abused-tld"
	RuleFreeHosting           = "free-hosting"
	RuleManyHyphens           = "many-hyphens"
	RuleManyDigits            = "many-digits"
	RuleBrandOwned            = "brand-owned"
	// RuleRestrictedRegistry caps a name under a government or academic suffix below alert:
	// a look-alike cannot be registered there ("hponline.nic.in" is a state's).
	RuleRestrictedRegistry = "restricted-registry"
	// RuleTradeWord lowers a brand or printer name that sells or repairs things (parts,
	// store, refill) and uses no helpline, setup or problem word: a shop, not a helpline.
	RuleTradeWord = "trade-word"
	// RuleModelNumber: a printer brand followed by a model number ("canonmx922", "hp3755").
	RuleModelNumber = "model-number"
	// RuleBrandList: several printer brands named together ("hpcanonepson"), which only a
	// printer site does.
	RuleBrandList = "brand-list"

	// Enrichment rules: they score facts learned after the name was seen (see Revise). Their
	// points may be negative: an old registration, a parked page or no DNS make a scam less
	// likely or less urgent.
	RuleRegisteredRecently = "registered-recently"
	RuleRegisteredLongAgo  = "registered-long-ago"
	RuleNoDNS              = "no-dns"
	RuleParked             = "parked"
	RuleCatchAll           = "catch-all-dns"
	RuleMailExchanger      = "mail-exchanger"
)

var enrichmentRuleKinds = map[string]bool{RuleRegisteredRecently: true, RuleRegisteredLongAgo: true,
	RuleNoDNS: true, RuleParked: true, RuleCatchAll: true, RuleMailExchanger: true}

var knownRuleKinds = []string{RuleBrandToken, RuleBrandTypo, RuleBrandHomoglyph, RuleBrandLabel, RuleBrandLabelCountry, RuleBrandLabelInstitution,
	RuleBrandEmbedded, RuleProductLine, RulePrinterWord, RulePrintingWord, RulePrinterTypo, RuleProductTypo, RuleExtraKeyword, RuleKeywordTypo,
	RuleSubdomainOnly, RuleAbusedTLD, RuleFreeHosting, RuleManyHyphens, RuleManyDigits, RuleBrandOwned, RuleRestrictedRegistry, RuleTradeWord, RuleModelNumber, RuleBrandList,
	RuleRegisteredRecently, RuleRegisteredLongAgo, RuleNoDNS, RuleParked, RuleCatchAll, RuleMailExchanger}

// LoadError is a problem in a rule file, located by file and line.
type LoadError struct {
	File string
	Line int
	Msg  string
}

func (e *LoadError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// LoadErrors collects every problem found in one file, so a user fixes them in one pass.
type LoadErrors []*LoadError

func (l LoadErrors) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// LoadFile reads and compiles a rule file.
func LoadFile(path string) (*RuleSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading rule file: %w", err)
	}
	return Parse(data, path)
}

var (
	defaultOnce sync.Once
	defaultSet  *RuleSet
	defaultErr  error
)

// Default returns the embedded default rule set, compiled once per process.
func Default() (*RuleSet, error) {
	defaultOnce.Do(func() {
		defaultSet, defaultErr = Parse(defaultRulesYAML, "default_rules.yaml (embedded)")
		if defaultErr == nil {
			defaultSet.Builtin = true
		}
	})
	return defaultSet, defaultErr
}

// Parse decodes and validates a rule file. Unknown keys, bad points, bad regular expressions,
// duplicate brands, tokens or keywords are errors naming the file and line; nothing is half-applied.
func Parse(data []byte, filename string) (*RuleSet, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(filename, err)
	}
	if len(root.Content) == 0 {
		return nil, &LoadError{File: filename, Msg: "empty rule file"}
	}
	// Every problem is collected before giving up: unknown keys (walked here, so they do not
	// stop the rest), values of the wrong type (the decoder goes on past them), then the
	// semantic checks on what did decode. They are reported in file order.
	keys := keyCheck{file: filename, misspelled: map[string]bool{}}
	keys.walk(&root, reflect.TypeOf(RuleFile{}), nil)
	errs := keys.errs
	var rf RuleFile
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&rf); err != nil {
		if le, ok := yamlError(filename, err).(LoadErrors); ok {
			errs = append(errs, le...)
		} else {
			return nil, yamlError(filename, err)
		}
	}
	v := validator{file: filename, root: root.Content[0], misspelled: keys.misspelled}
	v.check(&rf)
	errs = append(errs, v.errs...)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
		return nil, errs
	}
	rs, err := compile(&rf)
	if err != nil {
		return nil, err
	}
	rs.Text, rs.SourceName = append([]byte(nil), data...), filename
	sum := sha256.Sum256(data)
	rs.Hash = hex.EncodeToString(sum[:])
	return rs, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+): `)

// yamlError turns yaml.v3's messages ("yaml: unmarshal errors:\n  line 4: field x not found")
// into one LoadError per line, each carrying the file name.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var out LoadErrors
		for _, msg := range te.Errors {
			out = append(out, lineMessage(file, msg))
		}
		return out
	}
	return lineMessage(file, strings.TrimPrefix(err.Error(), "yaml: "))
}

func lineMessage(file, msg string) *LoadError {
	le := &LoadError{File: file, Msg: msg}
	if m := yamlLineRE.FindStringSubmatchIndex(msg); m != nil {
		fmt.Sscanf(msg[m[2]:m[3]], "%d", &le.Line)
		le.Msg = msg[:m[0]] + msg[m[1]:]
	}
	return le
}

// validator checks the semantic rules the YAML decoder cannot, locating each error by walking
// the parsed node tree along the same path.
type validator struct {
	file string
	root *yaml.Node
	errs LoadErrors
	// misspelled are the keys reported as typos (keyCheck): what is missing because of them
	// is not reported again.
	misspelled map[string]bool
}

func (v *validator) fail(path []any, format string, args ...any) {
	for i := 1; i <= len(path); i++ {
		if v.misspelled[pathKey(path[:i])] {
			return
		}
	}
	v.errs = append(v.errs, &LoadError{File: v.file, Line: lineOf(v.root, path), Msg: fmt.Sprintf(format, args...)})
}

// lineOf follows a path of map keys (string) and sequence indexes (int) and returns the line of
// the deepest node it reaches.
func lineOf(n *yaml.Node, path []any) int {
	line := n.Line
	for _, step := range path {
		var next *yaml.Node
		switch s := step.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == s {
						next = n.Content[i+1]
						line = n.Content[i].Line
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && s < len(n.Content) {
				next = n.Content[s]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

var letterRE = regexp.MustCompile(`^[a-z]+$`)
var wordRE = regexp.MustCompile(`^[a-z0-9]+$`)
var domainRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

func (v *validator) check(rf *RuleFile) {
	if strings.TrimSpace(rf.Version) == "" {
		v.fail([]any{"version"}, "version is required: every finding records the rule-set version that scored it")
	}
	t := rf.Thresholds
	if t.Alert < 1 || t.Alert > 100 || t.Watch < 1 || t.Watch > 100 {
		v.fail([]any{"thresholds"}, "thresholds must be between 1 and 100 (alert %d, watch %d)", t.Alert, t.Watch)
	} else if t.Watch > t.Alert {
		v.fail([]any{"thresholds", "watch"}, "watch threshold %d is above alert threshold %d", t.Watch, t.Alert)
	}
	known := map[string]bool{}
	for _, k := range knownRuleKinds {
		known[k] = true
	}
	names := make([]string, 0, len(rf.Rules))
	for name := range rf.Rules {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		spec := rf.Rules[name]
		p := []any{"rules", name}
		if !known[name] {
			v.fail(p, "unknown rule %q%s", name, first(suggest(name, knownRuleKinds, "known rules")))
			continue
		}
		lowest := 0
		if enrichmentRuleKinds[name] || name == RuleTradeWord {
			lowest = -100
		}
		if spec.Points < lowest || spec.Points > 100 {
			v.fail(append(p, "points"), "rule %q: points must be between %d and 100, got %d", name, lowest, spec.Points)
		}
		if (name == RuleRegisteredRecently || name == RuleRegisteredLongAgo) && spec.Days <= 0 {
			v.fail(append(p, "days"), "rule %q needs days: the age window in days", name)
		}
		if spec.Max < 0 || spec.Max > 100 || spec.Min < 0 {
			v.fail(p, "rule %q: min and max must be 0-100", name)
		}
		if spec.Factor < 0 || spec.Factor > 1 {
			v.fail(append(p, "factor"), "rule %q: factor must be between 0 and 1, got %g", name, spec.Factor)
		}
	}

	for i, cidr := range rf.Parking.Addresses {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			v.fail([]any{"parking", "addresses", i}, "parking address %q is not a CIDR prefix (like 192.0.2.0/24)", cidr)
		}
	}
	for i, ns := range rf.Parking.NameServers {
		if ns == "" || strings.ContainsAny(ns, " /:@") {
			v.fail([]any{"parking", "nameservers", i}, "parking name server %q is not a domain", ns)
		}
	}

	seenKeyword := map[string]string{}
	seenGroup := map[string]bool{}
	for i, g := range rf.Keywords {
		p := []any{"keywords", i}
		if g.Group == "" {
			v.fail(p, "keyword group %d has no name", i+1)
		} else if seenGroup[g.Group] {
			v.fail(append(p, "group"), "duplicate keyword group %q", g.Group)
		}
		seenGroup[g.Group] = true
		if g.Points < 0 || g.Points > 100 {
			v.fail(append(p, "points"), "keyword group %q: points must be between 0 and 100, got %d", g.Group, g.Points)
		}
		if g.Needs != "printer" && g.Needs != "brand" {
			v.fail(append(p, "needs"), "keyword group %q: needs must be \"printer\" or \"brand\", got %q", g.Group, g.Needs)
		}
		for j, w := range g.Words {
			wp := append(append([]any{}, p...), "words", j)
			if !wordRE.MatchString(w) {
				v.fail(wp, "keyword %q must be lowercase letters and digits only", w)
			} else if other, dup := seenKeyword[w]; dup {
				v.fail(wp, "keyword %q is in group %q and again in group %q", w, other, g.Group)
			}
			seenKeyword[w] = g.Group
		}
	}
	v.words([]any{"printer_words"}, "printer word", rf.PrinterWords)
	v.words([]any{"printing_words"}, "printing word", rf.PrintingWords)
	for i, w := range rf.PrintingWords {
		if contains(rf.PrinterWords, w) {
			v.fail([]any{"printing_words", i}, "printing word %q is also a printer word", w)
		}
	}
	v.words([]any{"trade_words"}, "trade word", rf.TradeWords)
	for i, w := range rf.TradeWords {
		if g, ok := seenKeyword[w]; ok {
			v.fail([]any{"trade_words", i}, "trade word %q is also a keyword of group %q", w, g)
		}
	}
	v.words([]any{"vocabulary"}, "vocabulary word", rf.Vocabulary)
	for i, tld := range rf.AbusedTLDs {
		if !wordRE.MatchString(tld) {
			v.fail([]any{"abused_tlds", i}, "abused TLD %q must be one lowercase label without dots", tld)
		}
	}
	for i, d := range rf.HostingPlatforms {
		if !domainRE.MatchString(d) || !strings.Contains(d, ".") {
			v.fail([]any{"hosting_platforms", i}, "hosting platform %q is not a lowercase domain name", d)
		}
	}
	for i, p := range rf.Patterns {
		pp := []any{"patterns", i}
		if p.Name == "" {
			v.fail(pp, "pattern %d has no name", i+1)
		}
		if _, err := regexp.Compile(p.Regex); err != nil {
			v.fail(append(pp, "regex"), "pattern %q: bad regular expression: %v", p.Name, err)
		}
		if p.Points < 0 || p.Points > 100 {
			v.fail(append(pp, "points"), "pattern %q: points must be between 0 and 100, got %d", p.Name, p.Points)
		}
	}

	if len(rf.Brands) == 0 {
		v.fail([]any{"brands"}, "no brands: a rule set needs at least one brand")
	}
	for _, kind := range sortedKeys(rf.Site.Points) {
		if !contains(siteScoreKinds, kind) {
			v.fail([]any{"site", "points", kind}, "unknown site score %q%s", kind, first(suggest(kind, siteScoreKinds, "site scores")))
		}
	}
	seenBrand := map[string]bool{}
	seenToken := map[string]string{}
	seenOwned := map[string]string{}
	for i, b := range rf.Brands {
		p := []any{"brands", i}
		key := strings.ToLower(b.Name)
		if b.Name == "" {
			v.fail(p, "brand %d has no name", i+1)
		} else if seenBrand[key] {
			v.fail(append(p, "name"), "duplicate brand %q", b.Name)
		}
		seenBrand[key] = true
		if len(b.Tokens) == 0 {
			v.fail(append(append([]any{}, p...), "tokens"), "brand %q has no tokens", b.Name)
		}
		for j, tok := range append(append([]string{}, b.Tokens...), b.Products...) {
			field, idx := "tokens", j
			if j >= len(b.Tokens) {
				field, idx = "products", j-len(b.Tokens)
			}
			tp := append(append([]any{}, p...), field, idx)
			if !letterRE.MatchString(tok) {
				v.fail(tp, "brand %q: %s entry %q must be lowercase letters only", b.Name, strings.TrimSuffix(field, "s"), tok)
			} else if other, dup := seenToken[tok]; dup {
				v.fail(tp, "brand %q: token %q already belongs to brand %q", b.Name, tok, other)
			} else if g, isKw := seenKeyword[tok]; isKw {
				v.fail(tp, "brand %q: token %q is also a keyword of group %q", b.Name, tok, g)
			}
			seenToken[tok] = b.Name
		}
		for j, cp := range b.CommonProducts {
			if !contains(b.Products, cp) {
				v.fail(append(append([]any{}, p...), "common_products", j), "brand %q: common product %q is not in its products", b.Name, cp)
			}
		}
		for j, d := range b.Owned {
			if !domainRE.MatchString(d) {
				v.fail(append(append([]any{}, p...), "owned", j), "brand %q: owned domain %q is not a lowercase domain name", b.Name, d)
			} else if other, dup := seenOwned[d]; dup && other != b.Name {
				v.fail(append(append([]any{}, p...), "owned", j), "brand %q: domain %q is already owned by %q", b.Name, d, other)
			}
			seenOwned[d] = b.Name
		}
	}
}

func (v *validator) words(path []any, what string, words []string) {
	for i, w := range words {
		if !wordRE.MatchString(w) {
			v.fail(append(append([]any{}, path...), i), "%s %q must be lowercase letters and digits only", what, w)
		}
	}
}

func first(hint, _ string) string { return hint }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
