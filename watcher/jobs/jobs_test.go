package jobs

import "testing"

// Every registered kind is complete: a unique name, attempts, a deadline and backoff, and an
// After that names a registered kind listed before it (a job never waits for a kind that does
// not exist, or for one that waits for it).
func TestRegistryIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range All {
		if k.Name == "" || seen[k.Name] {
			t.Errorf("kind %q: empty or repeated name", k.Name)
		}
		if k.MaxAttempts < 1 || k.Timeout <= 0 || k.Backoff <= 0 || k.MaxBackoff < k.Backoff || k.Workers < 1 {
			t.Errorf("kind %q is incomplete: %+v", k.Name, k)
		}
		if k.After != "" && !seen[k.After] {
			t.Errorf("kind %q waits for %q, which is not registered before it", k.Name, k.After)
		}
		seen[k.Name] = true
		if got, ok := Lookup(k.Name); !ok || got.Name != k.Name {
			t.Errorf("Lookup(%q) = %v, %v", k.Name, got.Name, ok)
		}
	}
	if _, ok := Lookup("nope"); ok {
		t.Error("Lookup found an unregistered kind")
	}
}
