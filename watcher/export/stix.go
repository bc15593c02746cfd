package export

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/output"
)

// STIXOptions shape the bundle.
type STIXOptions struct {
	// ConsoleURL links each indicator to its case in the console.
	ConsoleURL string
	// TLP marks every object (clear, green, amber, amber+strict, red; default amber).
	TLP string
	// Screenshots embeds the latest capture's screenshot as an artifact (payload_bin).
	Screenshots bool
}

// stixSCONamespace is the namespace STIX 2.1 (section 2.9) gives the deterministic ids of
// cyber observables: UUIDv5 over the canonical JSON of their id-contributing properties.
var stixSCONamespace = parseUUID("00abedb4-aa42-466c-9c01-fed23315a9b7")

// The TLP marking definitions the STIX 2.1 specification predefines (section 7.2.1.4): every
// consumer knows them by these ids. TLP 2.0's CLEAR is TLP 1.0's WHITE.
var tlpMarkings = map[string]string{
	"clear": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
	"green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
	"amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
	"red":   "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}

// TLPNames are the accepted --tlp values.
var TLPNames = []string{"clear", "green", "amber", "red"}

// created is the creation time of the identities: fixed, so that their ids and contents stay
// the same across exports.
var identityCreated = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func stixTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// scoID is a cyber observable's deterministic id.
func scoID(typ string, contributing map[string]any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // canonical JSON (RFC 8785) escapes only what JSON must
	enc.Encode(contributing)
	return typ + "--" + uuid5(stixSCONamespace, strings.TrimSuffix(buf.String(), "\n"))
}

func sdoID(typ, name string) string { return typ + "--" + uuid5(helpwatchNamespace, typ+"/"+name) }

// IdentityID is the id of the identity helpwatch gives a brand.
func IdentityID(brand string) string { return sdoID("identity", "brand/"+strings.ToLower(brand)) }

// IndicatorID is the id of a case's indicator.
func IndicatorID(registrable string) string { return sdoID("indicator", registrable) }

// stixPatternValue quotes a value for a STIX pattern string literal.
func stixPatternValue(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// NewSTIXBundle builds one bundle over items: an identity per brand and one for helpwatch, and
// per case an indicator (a pattern on the domain name, valid from its first certificate,
// confidence from the score) based on an observed-data that refers to the domain name, its
// addresses, the certificate, the URL and the screenshot artifact.
func NewSTIXBundle(items []Item, opts STIXOptions) map[string]any {
	tlp := opts.TLP
	if tlp == "" {
		tlp = "amber"
	}
	marking := tlpMarkings[tlp]
	producer := sdoID("identity", "helpwatch")
	objects := []any{map[string]any{"type": "identity", "spec_version": "2.1", "id": producer, "created": stixTime(identityCreated),
		"modified": stixTime(identityCreated), "name": "helpwatch", "identity_class": "system",
		"description": "helpwatch: finds helpline-scam domains impersonating printer brands in Certificate Transparency"}}
	brands := map[string]bool{}
	seen := map[string]bool{producer: true} // an observable shared by cases (an address) is in the bundle once
	for i := range items {
		it := &items[i]
		c := &it.Case
		first, last := it.firstObserved(), it.lastObserved()
		created := stixTime(first)
		modified := stixTime(last)
		var refs []string
		add := func(o map[string]any) string {
			id := o["id"].(string)
			if seen[id] {
				return id
			}
			seen[id] = true
			o["spec_version"] = "2.1"
			objects = append(objects, o)
			return id
		}
		domainID := add(map[string]any{"type": "domain-name", "id": scoID("domain-name", map[string]any{"value": c.Registrable}), "value": c.Registrable})
		refs = append(refs, domainID)
		for _, n := range c.Names {
			name := strings.TrimPrefix(n.Name, "*.")
			if name != c.Registrable {
				refs = append(refs, add(map[string]any{"type": "domain-name", "id": scoID("domain-name", map[string]any{"value": name}), "value": name}))
			}
		}
		for _, a := range it.addresses() {
			if strings.Contains(a, ":") {
				continue // IPv6 is not in A records; a capture's IPv6 address is skipped
			}
			refs = append(refs, add(map[string]any{"type": "ipv4-addr", "id": scoID("ipv4-addr", map[string]any{"value": a}), "value": a}))
		}
		if it.Capture != nil {
			for _, s := range it.Capture.Shots {
				if s.URL != "" {
					u := output.Printable(s.URL)
					refs = appendNew(refs, add(map[string]any{"type": "url", "id": scoID("url", map[string]any{"value": u}), "value": u}))
				}
			}
		}
		if fp := strings.ToLower(strings.ReplaceAll(c.Cert.Fingerprint, ":", "")); len(fp) == 64 || len(fp) == 40 {
			algo := "SHA-256"
			if len(fp) == 40 {
				algo = "SHA-1"
			}
			hashes := map[string]any{algo: fp}
			cert := map[string]any{"type": "x509-certificate", "id": scoID("x509-certificate", map[string]any{"hashes": hashes}), "hashes": hashes}
			if c.Cert.Issuer != "" {
				cert["issuer"] = output.Printable(c.Cert.Issuer)
			}
			if !c.Cert.NotBefore.IsZero() {
				cert["validity_not_before"] = stixTime(c.Cert.NotBefore)
			}
			if !c.Cert.NotAfter.IsZero() {
				cert["validity_not_after"] = stixTime(c.Cert.NotAfter)
			}
			refs = append(refs, add(cert))
		}
		if opts.Screenshots && len(it.Screenshot) > 0 {
			hashes := map[string]any{"SHA-256": it.ScreenshotSHA}
			refs = append(refs, add(map[string]any{"type": "artifact", "id": scoID("artifact", map[string]any{"hashes": hashes}), "mime_type": "image/png",
				"payload_bin": base64.StdEncoding.EncodeToString(it.Screenshot), "hashes": hashes}))
		}
		observedID := sdoID("observed-data", c.Registrable)
		add(map[string]any{"type": "observed-data", "id": observedID, "created": created, "modified": modified, "created_by_ref": producer,
			"first_observed": stixTime(first), "last_observed": stixTime(last), "number_observed": max(c.CertCount, 1),
			"object_refs": refs, "object_marking_refs": []string{marking}})

		brand := c.Brand
		types := []string{"anomalous-activity"}
		site := it.siteVerdict()
		if c.Score.Verdict == rules.VerdictAlert || site == rules.SiteClone || site == rules.SiteHelpline {
			types = []string{"malicious-activity"}
		}
		why := make([]string, 0, len(c.Score.Reasons))
		for _, r := range c.Score.Reasons {
			why = append(why, fmt.Sprintf("%+d %s", r.Points, output.Printable(r.Detail)))
		}
		desc := "helpwatch " + string(c.Score.Verdict) + " (score " + strconv.Itoa(c.Score.Score) + ")"
		if site != "" {
			desc += "; the site showed a " + string(site) + " page"
		}
		desc += ". Why: " + strings.Join(why, "; ")
		ind := map[string]any{"type": "indicator", "id": IndicatorID(c.Registrable), "created": created, "modified": modified,
			"created_by_ref": producer, "name": c.Registrable, "description": desc, "indicator_types": types,
			"pattern": "[domain-name:value = " + stixPatternValue(c.Registrable) + "]", "pattern_type": "stix", "pattern_version": "2.1",
			"valid_from": stixTime(first), "confidence": min(max(c.Score.Score, 0), 100), "object_marking_refs": []string{marking},
			"labels": []string{"helpline-scam", "printer"}}
		if !it.TakenDown.IsZero() {
			// Taken down: no longer a valid indicator from then on.
			if it.TakenDown.After(first) {
				ind["valid_until"] = stixTime(it.TakenDown)
			}
		}
		var ext []any
		if opts.ConsoleURL != "" && c.ID > 0 {
			ext = append(ext, map[string]any{"source_name": "helpwatch", "url": opts.ConsoleURL + "/case/" + strconv.FormatInt(c.ID, 10),
				"external_id": c.Registrable})
		}
		if fp := strings.ToLower(strings.ReplaceAll(c.Cert.Fingerprint, ":", "")); len(fp) == 64 {
			ext = append(ext, map[string]any{"source_name": "crt.sh", "url": "https://crt.sh/?sha256=" + fp})
		}
		if len(ext) > 0 {
			ind["external_references"] = ext
		}
		add(ind)
		add(map[string]any{"type": "relationship", "id": sdoID("relationship", "based-on/"+c.Registrable), "created": created, "modified": modified,
			"created_by_ref": producer, "relationship_type": "based-on", "source_ref": IndicatorID(c.Registrable), "target_ref": observedID,
			"object_marking_refs": []string{marking}})
		if brand != "" {
			key := strings.ToLower(brand)
			if !brands[key] {
				brands[key] = true
				add(map[string]any{"type": "identity", "id": IdentityID(brand), "created": stixTime(identityCreated), "modified": stixTime(identityCreated),
					"name": output.Printable(brand), "identity_class": "organization", "sectors": []string{"technology"},
					"description": "the brand the look-alike domains impersonate"})
			}
			add(map[string]any{"type": "relationship", "id": sdoID("relationship", "impersonates/"+c.Registrable), "created": created, "modified": modified,
				"created_by_ref": producer, "relationship_type": "related-to", "description": "impersonates " + output.Printable(brand),
				"source_ref": IndicatorID(c.Registrable), "target_ref": IdentityID(brand), "object_marking_refs": []string{marking}})
		}
	}
	id := make([]byte, 16)
	rand.Read(id)
	id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
	return map[string]any{"type": "bundle", "id": fmt.Sprintf("bundle--%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16]), "objects": objects}
}

// WriteSTIX writes the bundle of items.
func WriteSTIX(w io.Writer, items []Item, opts STIXOptions) error {
	enc := json.NewEncoder(output.SafeJSON(w))
	enc.SetIndent("", " ")
	return enc.Encode(NewSTIXBundle(items, opts))
}
