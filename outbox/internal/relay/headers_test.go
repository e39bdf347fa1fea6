package relay

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/courier-go/courier/message"
)

// FuzzDecodeHeaders checks that the headers column decodes as
// json.Unmarshal decodes it, whether the plain path or encoding/json
// reads it.
//
//	go test -fuzz FuzzDecodeHeaders ./outbox/internal/relay/
func FuzzDecodeHeaders(f *testing.F) {
	for _, s := range []string{`{}`, ` { "a" : "b" , "c":"d" } `, `{"a":"b","a":"c"}`, `{"a":"\u00e9"}`, `{"a":"\xff"}`,
		`{"a":1}`, `null`, `{"a":"b"`, `{"a":"b",}`, `{"a":"b"} x`, "{\"a\":\"\x01\"}", `[]`, `{"":""}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := decodeHeaders(s)
		var want message.Headers
		werr := json.Unmarshal([]byte(s), &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("decodeHeaders(%q) = %v, %v; json.Unmarshal: %v, %v", s, got, err, want, werr)
		}
		if err == nil && !maps.Equal(got, want) {
			t.Fatalf("decodeHeaders(%q) = %v, json.Unmarshal %v", s, got, want)
		}
	})
}

func BenchmarkDecodeHeaders(b *testing.B) {
	s := `{"PARTITION_ID":"order-42","DATE":"1765000000000","event-type":"OrderCreated","event-aggregate-type":"Order","event-aggregate-id":"order-42"}`
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeHeaders(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var h message.Headers
			if err := json.Unmarshal([]byte(s), &h); err != nil {
				b.Fatal(err)
			}
		}
	})
}
