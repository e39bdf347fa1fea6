package kafka

import (
	"maps"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzEventuateRecords decodes record values of any content as
// Eventuate's envelope: decoding never panics; a value it accepts gives a
// message with an ID and a destination, which encodes into a record that
// decodes to the same message.
//
//	go test -fuzz FuzzEventuateRecords ./broker/kafka/
func FuzzEventuateRecords(f *testing.F) {
	for _, name := range []string{"event.envelope", "command.envelope", "text.envelope"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "internal", "eventuate", "testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "k")
	}
	f.Add([]byte(`{"payload":"","headers":{}}`), "")
	f.Add([]byte(`{"payload":"x","headers":{"ID":""}}`), "\xff")
	f.Fuzz(func(t *testing.T, value []byte, key string) {
		r := &kgo.Record{Topic: "orders", Partition: 3, Offset: 7, Key: []byte(key), Value: value}
		m, err := decodeEventuate(r)
		if err != nil {
			return
		}
		if m.ID == "" || m.Destination() == "" {
			t.Fatalf("message %+v without an ID or a destination", m)
		}
		again, err := encodeEventuate(m.Destination(), "Thu, 1 Jan 2026 00:00:00 GMT", m)
		if err != nil {
			t.Fatalf("encoding what was decoded: %v", err)
		}
		again.Topic, again.Partition, again.Offset = r.Topic, r.Partition, r.Offset
		m2, err := decodeEventuate(again)
		if err != nil {
			t.Fatalf("decoding what was encoded: %v", err)
		}
		// Encoding adds a DATE, and a message without PARTITION_ID is
		// keyed, and so comes back partitioned, by its ID.
		want := maps.Clone(m.Headers)
		if _, ok := want["DATE"]; !ok {
			want["DATE"] = "Thu, 1 Jan 2026 00:00:00 GMT"
		}
		if _, ok := want["PARTITION_ID"]; !ok {
			want["PARTITION_ID"] = m.ID
		}
		if m2.ID != m.ID || string(m2.Payload) != string(m.Payload) || !maps.Equal(m2.Headers, want) {
			t.Fatalf("round trip: %+v, want %+v", m2, m)
		}
	})
}
