package ctgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestMessagesAreCertstreamJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteMessages(&buf, 300); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	names := Names(300)
	i := 0
	for sc.Scan() {
		var m struct {
			Type string `json:"message_type"`
			Data struct {
				Leaf struct {
					All []string `json:"all_domains"`
				} `json:"leaf_cert"`
			} `json:"data"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		found := false
		for _, n := range m.Data.Leaf.All {
			found = found || strings.HasSuffix(n, names[i])
		}
		if m.Type != "certificate_update" || !found {
			t.Fatalf("line %d: %+v lacks %s", i+1, m, names[i])
		}
		i++
	}
	if i != 300 {
		t.Fatalf("%d lines", i)
	}
}
