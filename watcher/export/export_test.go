package export

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/internal/fixture"
	"github.com/helpwatch/helpwatch/watcher/store"
)

const fixtureStream = "../../testdata/report_fixture.jsonl"

// exportWorld is the fixture store with a capture (screenshot, phone, serving address) of one
// case and a takedown of another.
func exportWorld(t *testing.T) (*store.SQL, string) {
	t.Helper()
	ctx := context.Background()
	db, _ := fixture.FilledStore(t, fixtureStream)
	c, ok, err := db.Case(ctx, "hp-printer-setup-help.com")
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 40, 30)))
	shot := buf.Bytes()
	sum := sha256.Sum256(shot)
	sha := hex.EncodeToString(sum[:])
	capture := &watcher.Capture{CaseID: c.ID, Name: c.Registrable, At: fixture.Enriched.Add(30 * time.Minute), Verdict: rules.SiteHelpline,
		Shots: []watcher.Shot{{Profile: "desktop", URL: "https://hp-printer-setup-help.com/", FinalURL: "https://hp-printer-setup-help.com/setup",
			Status: 200, Address: "192.0.2.10", Verdict: rules.SiteHelpline, Screenshot: sha, Indicators: []string{},
			Phones: []rules.SitePhone{{E164: "+18005550199", TollFree: true, Source: "tel"}}}}}
	if err := db.SaveCapture(ctx, nil, capture, []store.Artefact{{SHA256: sha, MediaType: "image/png", Data: shot}}); err != nil {
		t.Fatal(err)
	}
	// The fixture's fingerprints are placeholders; a CT log gives a SHA-256.
	if _, err := db.DB().ExecContext(ctx, `UPDATE names SET fingerprint = $1 WHERE case_id = $2`, strings.Repeat("ab", 32), c.ID); err != nil {
		t.Fatal(err)
	}
	return db, sha
}

func gather(t *testing.T, db *store.SQL) []Item {
	t.Helper()
	items, err := Gather(context.Background(), db, store.Query{MinVerdict: rules.VerdictWatch})
	if err != nil {
		t.Fatal(err)
	}
	if len(items) < 3 {
		t.Fatalf("%d items", len(items))
	}
	return items
}

// stixSchemas compiles the OASIS STIX 2.1 schemas from testdata, by their $id.
func stixSchemas(t *testing.T) (compile func(url string) *jsonschema.Schema) {
	t.Helper()
	c := jsonschema.NewCompiler()
	root := "../../testdata/stix/schemas"
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		doc, err := jsonschema.UnmarshalJSON(f)
		if err != nil {
			return err
		}
		id, _ := doc.(map[string]any)["$id"].(string)
		return c.AddResource(id, doc)
	})
	if err != nil {
		t.Fatal(err)
	}
	cache := map[string]*jsonschema.Schema{}
	return func(url string) *jsonschema.Schema {
		if s := cache[url]; s != nil {
			return s
		}
		s, err := c.Compile(url)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		cache[url] = s
		return s
	}
}

const stixBase = "http://raw.githubusercontent.com/oasis-open/cti-stix2-json-schemas/stix2.1/schemas/"

var stixSchemaOf = map[string]string{
	"identity": "sdos/identity.json", "indicator": "sdos/indicator.json", "observed-data": "sdos/observed-data.json",
	"relationship": "sros/relationship.json", "domain-name": "observables/domain-name.json", "ipv4-addr": "observables/ipv4-addr.json",
	"url": "observables/url.json", "x509-certificate": "observables/x509-certificate.json", "artifact": "observables/artifact.json",
}

func exportSTIX(t *testing.T, items []Item) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSTIX(&buf, items, STIXOptions{ConsoleURL: "https://console.example.org", Screenshots: true}); err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return doc.(map[string]any)
}

// The STIX bundle validates against the OASIS schemas, object by object; each case has an
// indicator based on an observed-data that refers to its domain name, addresses, certificate,
// URL and screenshot; a second export keeps every id and moves "modified" with new evidence.
func TestSTIXBundleValidatesAndKeepsIds(t *testing.T) {
	db, sha := exportWorld(t)
	compile := stixSchemas(t)
	bundle := exportSTIX(t, gather(t, db))
	if err := compile(stixBase + "common/bundle.json").Validate(bundle); err != nil {
		t.Fatalf("bundle: %v", err)
	}
	byID := map[string]map[string]any{}
	count := map[string]int{}
	for _, o := range bundle["objects"].([]any) {
		obj := o.(map[string]any)
		typ := obj["type"].(string)
		schema, ok := stixSchemaOf[typ]
		if !ok {
			t.Fatalf("an object of type %s", typ)
		}
		if err := compile(stixBase + schema).Validate(obj); err != nil {
			t.Errorf("%s %s: %v", typ, obj["id"], err)
		}
		if byID[obj["id"].(string)] != nil {
			t.Errorf("%s twice in the bundle", obj["id"])
		}
		byID[obj["id"].(string)] = obj
		count[typ]++
	}
	ind := byID[IndicatorID("hp-printer-setup-help.com")]
	if ind == nil || ind["pattern"] != "[domain-name:value = 'hp-printer-setup-help.com']" || ind["confidence"] == nil {
		t.Fatalf("indicator: %v", ind)
	}
	var observed map[string]any
	for _, o := range byID {
		if o["type"] == "relationship" && o["relationship_type"] == "based-on" && o["source_ref"] == ind["id"] {
			observed = byID[o["target_ref"].(string)]
		}
	}
	if observed == nil {
		t.Fatal("the indicator is based on no observed-data")
	}
	refTypes := map[string]bool{}
	for _, r := range observed["object_refs"].([]any) {
		ref := byID[r.(string)]
		if ref == nil {
			t.Fatalf("observed-data refers to %s, which is not in the bundle", r)
		}
		refTypes[ref["type"].(string)] = true
		if ref["type"] == "artifact" {
			data, _ := base64.StdEncoding.DecodeString(ref["payload_bin"].(string))
			if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sha {
				t.Error("the artifact is not the screenshot")
			}
		}
	}
	for _, want := range []string{"domain-name", "ipv4-addr", "x509-certificate", "url", "artifact"} {
		if !refTypes[want] {
			t.Errorf("observed-data lacks a %s: %v", want, refTypes)
		}
	}
	if byID[IdentityID("HP")] == nil || count["identity"] < 3 {
		t.Errorf("identities: %d, HP's %v", count["identity"], byID[IdentityID("HP")])
	}

	// Again, after new evidence: the same ids, a later modified for the case that changed.
	if _, err := db.DB().ExecContext(context.Background(), `UPDATE cases SET last_seen = last_seen + 86400000 WHERE registrable = 'hp-printer-setup-help.com'`); err != nil {
		t.Fatal(err)
	}
	again := exportSTIX(t, gather(t, db))
	if again["id"] == bundle["id"] {
		t.Error("two bundles with one id")
	}
	ids := map[string]map[string]any{}
	for _, o := range again["objects"].([]any) {
		ids[o.(map[string]any)["id"].(string)] = o.(map[string]any)
	}
	if len(ids) != len(byID) {
		t.Errorf("the second export has %d objects, the first %d", len(ids), len(byID))
	}
	for id := range byID {
		if ids[id] == nil {
			t.Errorf("%s is not in the second export", id)
		}
	}
	if m1, m2 := ind["modified"].(string), ids[IndicatorID("hp-printer-setup-help.com")]["modified"].(string); m2 <= m1 {
		t.Errorf("modified did not move: %s then %s", m1, m2)
	}
}

// mispDefinition is a misp-objects template.
type mispDefinition struct {
	UUID          string   `json:"uuid"`
	Version       int      `json:"version"`
	Required      []string `json:"required"`
	RequiredOneOf []string `json:"requiredOneOf"`
	Attributes    map[string]struct {
		Type       string   `json:"misp-attribute"`
		Categories []string `json:"categories"`
		Multiple   bool     `json:"multiple"`
	} `json:"attributes"`
}

// checkMISPEvent checks an event against MISP's object definitions and attribute types.
func checkMISPEvent(t *testing.T, ev *MISPEvent) {
	t.Helper()
	var types struct {
		Result struct {
			Types            []string            `json:"types"`
			CategoryTypeMaps map[string][]string `json:"category_type_mappings"`
		} `json:"result"`
	}
	raw, err := os.ReadFile("../../testdata/misp/describeTypes.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &types); err != nil {
		t.Fatal(err)
	}
	validAttr := func(where string, a MISPAttr) {
		if !slices.Contains(types.Result.Types, a.Type) || !slices.Contains(types.Result.CategoryTypeMaps[a.Category], a.Type) {
			t.Errorf("%s: type %q in category %q is not MISP's", where, a.Type, a.Category)
		}
		if a.UUID == "" || a.Value == "" {
			t.Errorf("%s: %+v", where, a)
		}
	}
	for _, a := range ev.Event.Attribute {
		validAttr("event attribute", a)
	}
	for _, o := range ev.Event.Object {
		raw, err := os.ReadFile(filepath.Join("../../testdata/misp/objects", o.Name, "definition.json"))
		if err != nil {
			t.Fatalf("object %s: %v", o.Name, err)
		}
		var def mispDefinition
		if err := json.Unmarshal(raw, &def); err != nil {
			t.Fatal(err)
		}
		if o.TemplateUUID != def.UUID || o.TemplateVersion != strconv.Itoa(def.Version) {
			t.Errorf("%s: template %s v%s, the definition is %s v%d", o.Name, o.TemplateUUID, o.TemplateVersion, def.UUID, def.Version)
		}
		seen := map[string]int{}
		for _, a := range o.Attribute {
			d, ok := def.Attributes[a.ObjectRelation]
			if !ok {
				t.Errorf("%s: no relation %q in the definition", o.Name, a.ObjectRelation)
				continue
			}
			if a.Type != d.Type || (len(d.Categories) > 0 && !slices.Contains(d.Categories, a.Category)) {
				t.Errorf("%s.%s: %s/%s, the definition says %s/%v", o.Name, a.ObjectRelation, a.Type, a.Category, d.Type, d.Categories)
			}
			validAttr(o.Name+"."+a.ObjectRelation, a)
			seen[a.ObjectRelation]++
			if seen[a.ObjectRelation] > 1 && !d.Multiple {
				t.Errorf("%s.%s more than once", o.Name, a.ObjectRelation)
			}
		}
		for _, r := range def.Required {
			if seen[r] == 0 {
				t.Errorf("%s lacks required %s", o.Name, r)
			}
		}
		if len(def.RequiredOneOf) > 0 && !slices.ContainsFunc(def.RequiredOneOf, func(r string) bool { return seen[r] > 0 }) {
			t.Errorf("%s has none of %v", o.Name, def.RequiredOneOf)
		}
	}
}

// Each case is an event whose objects MISP's definitions accept: domain-ip, phishing with the
// screenshot attached, x509, whois and phone; a second export keeps every uuid.
func TestMISPEventsMatchTheObjectDefinitions(t *testing.T) {
	db, sha := exportWorld(t)
	items := gather(t, db)
	var buf bytes.Buffer
	if err := WriteMISP(&buf, items, MISPOptions{TLP: "green", ConsoleURL: "https://console.example.org"}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Response []MISPEvent `json:"response"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || len(doc.Response) != len(items) {
		t.Fatalf("%d events for %d cases: %v", len(doc.Response), len(items), err)
	}
	names := map[string]bool{}
	for i := range doc.Response {
		ev := &doc.Response[i]
		checkMISPEvent(t, ev)
		if !slices.ContainsFunc(ev.Event.Tag, func(tg mispTag) bool { return tg.Name == "tlp:green" }) {
			t.Errorf("%s: no tlp:green tag: %v", ev.Event.Info, ev.Event.Tag)
		}
		for _, o := range ev.Event.Object {
			names[o.Name] = true
			for _, a := range o.Attribute {
				if a.ObjectRelation == "screenshot" {
					data, _ := base64.StdEncoding.DecodeString(a.Data)
					if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != sha {
						t.Error("the attachment is not the screenshot")
					}
				}
			}
		}
	}
	for _, want := range []string{"domain-ip", "phishing", "x509", "whois", "phone"} {
		if !names[want] {
			t.Errorf("no %s object in any event", want)
		}
	}
	again := NewMISPEvent(&items[0], MISPOptions{})
	if again.Event.UUID != doc.Response[0].Event.UUID || again.Event.Object[0].UUID != doc.Response[0].Event.Object[0].UUID {
		t.Error("a second export changes the uuids")
	}
}

// fakeMISP stands in for a MISP instance's REST API: it checks the key, refuses an event it
// has (as MISP does) and takes edits.
type fakeMISP struct {
	mu     sync.Mutex
	events map[string]int // uuid -> edits
}

func (f *fakeMISP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "the-key" {
		http.Error(w, `{"message":"Authentication failed."}`, http.StatusForbidden)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var ev MISPEvent
	if err := json.Unmarshal(body, &ev); err != nil || ev.Event.UUID == "" {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.URL.Path == "/events/add":
		if _, ok := f.events[ev.Event.UUID]; ok {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"name":"Could not add Event","message":"Could not add Event","errors":{"Event":{"uuid":["An event with this uuid already exists."]}}}`)
			return
		}
		f.events[ev.Event.UUID] = 0
	case r.URL.Path == "/events/edit/"+ev.Event.UUID:
		f.events[ev.Event.UUID]++
	default:
		http.NotFound(w, r)
		return
	}
	io.WriteString(w, `{"Event":{}}`)
}

// --push adds events, updates them the second time, and says when the key is refused.
func TestPushMISP(t *testing.T) {
	db, _ := exportWorld(t)
	items := gather(t, db)
	misp := &fakeMISP{events: map[string]int{}}
	srv := httptest.NewServer(misp)
	defer srv.Close()
	events := []MISPEvent{NewMISPEvent(&items[0], MISPOptions{}), NewMISPEvent(&items[1], MISPOptions{})}
	ctx := context.Background()
	added, updated, err := PushMISP(ctx, srv.Client(), srv.URL+"/", "the-key", events)
	if err != nil || added != 2 || updated != 0 {
		t.Fatalf("first push: %d added, %d updated, %v", added, updated, err)
	}
	added, updated, err = PushMISP(ctx, srv.Client(), srv.URL, "the-key", events)
	if err != nil || added != 0 || updated != 2 || len(misp.events) != 2 {
		t.Fatalf("second push: %d added, %d updated, %v (%d events)", added, updated, err, len(misp.events))
	}
	if _, _, err := PushMISP(ctx, srv.Client(), srv.URL, "wrong", events); err == nil || !strings.Contains(err.Error(), "refused the key") {
		t.Errorf("a wrong key: %v", err)
	}
}
