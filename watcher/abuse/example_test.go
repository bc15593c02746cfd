package abuse

import "testing"

// The example reporter file shipped in docs/ loads as it is.
func TestShippedReporterExampleLoads(t *testing.T) {
	r, err := LoadReporter("../../docs/reporter.example.yaml")
	if err != nil || r.Name == "" || r.Email == "" || r.OnBehalfOf == "" {
		t.Fatalf("docs/reporter.example.yaml: %+v %v", r, err)
	}
}
