package source

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/helpwatch/helpwatch/watcher"
	"github.com/helpwatch/helpwatch/watcher/ctgen"
)

// benchFrames is 1,000 synthetic full-format messages, with the benchmark sized to them.
func benchFrames(b *testing.B) [][]byte {
	var buf bytes.Buffer
	if err := ctgen.WriteMessages(&buf, 1000); err != nil {
		b.Fatal(err)
	}
	frames := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	b.SetBytes(int64(buf.Len() / len(frames)))
	b.ResetTimer()
	return frames
}

// BenchmarkDecodeMessage decodes full-format certstream messages (about 1.5 KB each).
func BenchmarkDecodeMessage(b *testing.B) {
	frames := benchFrames(b)
	for i := 0; i < b.N; i++ {
		ev := &watcher.Event{}
		if _, err := DecodeMessage(frames[i%len(frames)], ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEncodingJSON is the yardstick DecodeMessage is measured against: the same
// frames through encoding/json into a map, as certstream-go does.
func BenchmarkDecodeEncodingJSON(b *testing.B) {
	frames := benchFrames(b)
	for i := 0; i < b.N; i++ {
		var v map[string]any
		if err := json.Unmarshal(frames[i%len(frames)], &v); err != nil {
			b.Fatal(err)
		}
	}
}
