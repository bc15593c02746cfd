package enrichtest

import (
	"encoding/json"
	"fmt"
	"strings"
)

// RegistryDomain is an RDAP answer shaped like Verisign's thin .com answers.
func RegistryDomain(name, related, created string) string {
	return RegistryDomainWith(name, related, created, "Example Registrar, LLC", "abuse@registrar.test")
}

// RegistryDomainWith is RegistryDomain with a chosen registrar name and abuse e-mail (which may
// be hostile: they are JSON-quoted here, and must be escaped wherever they are shown).
func RegistryDomainWith(name, related, created, registrar, abuseEmail string) string {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	return fmt.Sprintf(`{"objectClassName":"domain","handle":"1_DOMAIN_COM-VRSN","ldhName":%s,
	"links":[{"rel":"self","href":"https://registry.test/domain/%s","type":"application/rdap+json"},
	         {"rel":"related","href":%s,"type":"application/rdap+json"}],
	"status":["client transfer prohibited"],
	"entities":[{"objectClassName":"entity","handle":"9999","roles":["registrar"],
	  "publicIds":[{"type":"IANA Registrar ID","identifier":"9999"}],
	  "vcardArray":["vcard",[["version",{},"text","4.0"],["fn",{},"text",%s]]],
	  "entities":[{"objectClassName":"entity","roles":["abuse"],"vcardArray":["vcard",[["version",{},"text","4.0"],["fn",{},"text",""],
	    ["tel",{"type":"voice"},"uri","tel:+1.5555550100"],["email",{},"text",%s]]]}]}],
	"events":[{"eventAction":"registration","eventDate":%s},{"eventAction":"expiration","eventDate":"2027-11-20T09:00:00Z"}],
	"nameservers":[{"objectClassName":"nameserver","ldhName":"NS1.EXAMPLE-DNS.NET"}],
	"rdapConformance":["rdap_level_0"]}`, q(strings.ToUpper(name)), name, q(related), q(registrar), q(abuseEmail), q(created))
}

// RegistryWhois is a port-43 answer shaped like Verisign's, naming referral as the registrar's server.
func RegistryWhois(name, referral string) string {
	return fmt.Sprintf(`   Domain Name: %s
   Registry Domain ID: 123_DOMAIN_COM-VRSN
   Registrar WHOIS Server: %s
   Registrar URL: http://www.registrar.test
   Updated Date: 2026-11-20T10:00:00Z
   Creation Date: 2026-11-20T09:00:00Z
   Registry Expiry Date: 2027-11-20T09:00:00Z
   Registrar: Example Registrar, LLC
   Registrar IANA ID: 9999
   Registrar Abuse Contact Email: abuse@registrar.test
   Registrar Abuse Contact Phone: +1.5555550100
   Domain Status: clientTransferProhibited https://icann.org/epp#clientTransferProhibited
   Name Server: NS1.EXAMPLE-DNS.NET
   DNSSEC: unsigned
>>> Last update of whois database: 2026-11-27T10:00:00Z <<<
`, strings.ToUpper(name), referral)
}

// IPNetwork is an RIR's RDAP answer for an address block, with its abuse contact nested in
// the holder's entity as ARIN writes it.
func IPNetwork(handle, start, end, name, country, org, abuseEmail string) string {
	return `{"objectClassName":"ip network","rdapConformance":["rdap_level_0"],"handle":"` + handle + `","startAddress":"` + start +
		`","endAddress":"` + end + `","ipVersion":"v4","name":"` + name + `","country":"` + country + `","entities":[{"objectClassName":"entity",` +
		`"handle":"ORG-1","roles":["registrant"],"vcardArray":["vcard",[["version",{},"text","4.0"],["fn",{},"text","` + org + `"]]],` +
		`"entities":[{"objectClassName":"entity","handle":"ABUSE-1","roles":["abuse"],"vcardArray":["vcard",[["version",{},"text","4.0"],` +
		`["fn",{},"text","Abuse desk"],["email",{},"text","` + abuseEmail + `"]]]}]}]}`
}

// IPBootstrapFor is an IANA-format IP bootstrap file sending the given prefixes to base.
func IPBootstrapFor(base string, prefixes ...string) []byte {
	quoted := make([]string, len(prefixes))
	for i, p := range prefixes {
		quoted[i] = `"` + p + `"`
	}
	return []byte(`{"version":"1.0","publication":"2026-12-01T00:00:00Z","services":[[[` + strings.Join(quoted, ",") + `],["` + base + `/"]]]}`)
}
