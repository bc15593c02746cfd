package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/helpwatch/helpwatch/rules"
	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/store/storetest"
)

// customRules writes the default rules as version "custom-1" with the alert threshold at 99:
// names that alert under the default rules only watch under these.
func customRules(t *testing.T) string {
	t.Helper()
	text := string(rules.DefaultRulesYAML())
	text = strings.Replace(text, `version: "`+mustDefault(t).Version+`"`, `version: "custom-1"`, 1)
	text = strings.Replace(text, "  alert: 50 ", "  alert: 99 ", 1)
	if !strings.Contains(text, "custom-1") || !strings.Contains(text, "alert: 99") {
		t.Fatal("the default rule file changed shape: update customRules")
	}
	p := filepath.Join(t.TempDir(), "custom.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustDefault(t *testing.T) *rules.RuleSet {
	t.Helper()
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// findingsOf lists the stored cases as JSON.
func findingsOf(t *testing.T, db string) map[string]watcher.Case {
	t.Helper()
	stdout, stderr, code := runCLI(t, "", "findings", "--db", db, "--format", "jsonl", "--limit", "0")
	if code != 0 {
		t.Fatalf("findings: exit %d\n%s", code, stderr)
	}
	out := map[string]watcher.Case{}
	for _, c := range decodeCases(t, stdout) {
		out[c.Registrable] = c
	}
	return out
}

// The rule set belongs to the deployment: a label (or any other write) by a process started
// without --rules scores with the rule file the watch was started with, not the built-in one;
// a process given another file refuses; 'rules use' switches every case.
func TestRuleSetBelongsToTheDeployment(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "h.db")
			if backend == "postgres" {
				db = storetest.Schema(t)
			}
			custom := customRules(t)
			if _, stderr, code := runCLI(t, "", "watch", "--rules", custom, "--enrich=false", "--site-check=false",
				"--status-every", "0", "--source", demoFile(t), "--db", db); code != 0 {
				t.Fatalf("watch: exit %d\n%s", code, stderr)
			}
			before := findingsOf(t, db)
			// A case that alerts under the default rules but only watches under custom-1.
			var name string
			for n, c := range before {
				if c.Score.RulesVersion != "custom-1" {
					t.Fatalf("%s stored with rules %q, want custom-1", n, c.Score.RulesVersion)
				}
				if c.Score.Score >= 50 && c.Score.Verdict == rules.VerdictWatch && (name == "" || n < name) {
					name = n
				}
			}
			if name == "" {
				t.Fatal("the demo has no case scoring 50-98: nothing to tell the rule sets apart")
			}
			if _, stderr, code := runCLI(t, "", "label", name, "unsure", "--by", "analyst", "--db", db); code != 0 {
				t.Fatalf("label: exit %d\n%s", code, stderr)
			}
			after := findingsOf(t, db)[name]
			if after.Score.RulesVersion != "custom-1" || after.Score.Score != before[name].Score.Score || after.Score.Verdict != rules.VerdictWatch {
				t.Fatalf("after the label %s is %s %d %s, want custom-1 %d watch", name, after.Score.RulesVersion,
					after.Score.Score, after.Score.Verdict, before[name].Score.Score)
			}

			// Another rule file is refused, naming both versions and what to do.
			def := filepath.Join(t.TempDir(), "default.yaml")
			os.WriteFile(def, rules.DefaultRulesYAML(), 0o644)
			_, stderr, code := runCLI(t, "", "work", "--drain", "--rules", def, "--db", db)
			if code != 2 || !strings.Contains(stderr, "custom-1") || !strings.Contains(stderr, mustDefault(t).Version) ||
				!strings.Contains(stderr, "rules use "+def) {
				t.Fatalf("work with another --rules: exit %d\n%s", code, stderr)
			}
			// The same file as the active one is accepted, and changes nothing.
			if stdout, stderr, code := runCLI(t, "", "rules", "use", custom, "--db", db); code != 0 || !strings.Contains(stdout, "already the active rule set") {
				t.Fatalf("rules use of the active file: exit %d\n%s%s", code, stdout, stderr)
			}

			// rules use: checked, recorded, every case rescored.
			bad := filepath.Join(t.TempDir(), "bad.yaml")
			os.WriteFile(bad, []byte("version: x\nthresholds: {alert: 10, watch: 50}\n"), 0o644)
			if _, stderr, code := runCLI(t, "", "rules", "use", bad, "--db", db); code == 0 || !strings.Contains(stderr, "nothing changed") {
				t.Fatalf("rules use of a bad file: exit %d\n%s", code, stderr)
			}
			stdout, stderr, code := runCLI(t, "", "rules", "use", def, "--db", db)
			if code != 0 || !strings.Contains(stdout, "cases rescored") {
				t.Fatalf("rules use: exit %d\n%s\n%s", code, stdout, stderr)
			}
			for n, c := range findingsOf(t, db) {
				if c.Score.RulesVersion != mustDefault(t).Version {
					t.Errorf("%s still scored with %s after rules use", n, c.Score.RulesVersion)
				}
			}
			if c := findingsOf(t, db)[name]; c.Score.Verdict != rules.VerdictAlert {
				t.Errorf("%s is %s under the default rules, want alert", name, c.Score.Verdict)
			}
			stdout, _, code = runCLI(t, "", "rules", "active", "--db", db)
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "active") || !strings.Contains(lines[1], mustDefault(t).Version) ||
				!strings.Contains(lines[2], "custom-1") {
				t.Errorf("rules active: exit %d\n%s", code, stdout)
			}
			// The label is still what the analyst said.
			if c := findingsOf(t, db)[name]; c.Label == nil || c.Label.Label != rules.LabelUnsure {
				t.Errorf("label lost: %+v", c.Label)
			}
		})
	}
}
