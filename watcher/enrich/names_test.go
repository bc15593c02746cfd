package enrich

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher/enrich/enrichtest"
)

// Names delivers every name in the order given, whatever order the lookups end in, with the
// invalid ones as they scored; an error from deliver stops it.
func TestNamesInOrder(t *testing.T) {
	rs := ruleSet(t)
	dns := enrichtest.StartDNS(t)
	dns.Add("hp-printer-setup-help.com. 60 IN A 192.0.2.10")
	e := &Enricher{Rules: rs, DNS: &Resolver{Servers: []string{dns.Addr}, Timeout: 2 * time.Second, Retries: 1}}
	names := []string{"hp-printer-setup-help.com", "bad name.com", "canon-printer-support-number.com", "epsonconnect-setup-help.info"}
	var got []*Record
	finished := 0
	if err := Names(context.Background(), rs, e, names, 3, func(r *Record, done int) error {
		got = append(got, r)
		finished = done
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(names) || finished != len(names) {
		t.Fatalf("%d records, %d finished, want %d", len(got), finished, len(names))
	}
	for i, r := range got {
		if r.Name != names[i] {
			t.Errorf("record %d is %s, want %s", i, r.Name, names[i])
		}
	}
	if got[1].Score.Verdict != rules.VerdictInvalid || got[1].Enrichment != nil {
		t.Errorf("an invalid name: %+v", got[1])
	}
	if got[0].Enrichment == nil || len(got[0].Enrichment.DNS) == 0 || len(got[0].Enrichment.DNS[0].A) != 1 {
		t.Errorf("the local DNS answer is missing: %+v", got[0].Enrichment)
	}
	stop := errors.New("stop")
	calls := 0
	if err := Names(context.Background(), rs, e, names, 2, func(*Record, int) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Errorf("deliver's error: %v after %d calls", err, calls)
	}
}
