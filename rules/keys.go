package rules

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"
	"go.yaml.in/yaml/v3"
)

// keyCheck walks a parsed rule file along the RuleFile schema and reports every key the schema
// does not have, with the nearest valid key as a suggestion. Unlike the decoder's KnownFields,
// it does not stop the other checks: a file with three typos shows three errors. A key that is
// missing only because it was misspelled ("threshold:") is remembered in misspelled, so the
// checks that would report it missing stay quiet.
type keyCheck struct {
	file       string
	errs       LoadErrors
	misspelled map[string]bool // pathKey of the valid key that a typo stands for
}

func pathKey(path []any) string { return fmt.Sprint(path...) + fmt.Sprint(len(path)) }

func (k *keyCheck) walk(n *yaml.Node, t reflect.Type, path []any) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		present := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			present[n.Content[i].Value] = true
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			ft, ok := fields[key.Value]
			if !ok {
				hint, near := suggest(key.Value, names, "valid keys here")
				k.errs = append(k.errs, &LoadError{File: k.file, Line: key.Line, Msg: fmt.Sprintf("unknown key %q%s", key.Value, hint)})
				if near != "" && !present[near] {
					k.misspelled[pathKey(append(append([]any{}, path...), near))] = true
				}
				continue
			}
			k.walk(val, ft, append(append([]any{}, path...), key.Value))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k.walk(n.Content[i+1], t.Elem(), append(append([]any{}, path...), n.Content[i].Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			k.walk(item, t.Elem(), append(append([]any{}, path...), i))
		}
	}
}

// suggest says which of valid is nearest to got (" (did you mean "x"?)", and x), or lists the
// valid names when none is near.
func suggest(got string, valid []string, what string) (hint, near string) {
	best, bestDist := "", 1<<30
	for _, v := range valid {
		d := levenshtein.ComputeDistance(strings.ToLower(got), strings.ToLower(v))
		if d < bestDist {
			best, bestDist = v, d
		}
	}
	if best != "" && (bestDist <= 2 || bestDist*3 <= len(got)) {
		return fmt.Sprintf(" (did you mean %q?)", best), best
	}
	sorted := append([]string(nil), valid...)
	sort.Strings(sorted)
	return fmt.Sprintf(" (%s: %s)", what, strings.Join(sorted, ", ")), ""
}
