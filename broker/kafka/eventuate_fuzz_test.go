package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/internal/eventuate/eventuatetest"
)

// FuzzEventuateRecords decodes record values of any content as
// Eventuate's envelope: decoding never panics; a value it accepts gives a
// message with an ID and a destination, which encodes into a record that
// decodes to the same message.
//
//	go test -fuzz FuzzEventuateRecords ./broker/kafka/
func FuzzEventuateRecords(f *testing.F) {
	for _, b := range eventuatetest.Envelopes(f) {
		f.Add(b, "k")
	}
	f.Add([]byte(`{"payload":"","headers":{}}`), "")
	f.Add([]byte(`{"payload":"x","headers":{"ID":""}}`), "\xff")
	f.Fuzz(func(t *testing.T, value []byte, key string) {
		r := &kgo.Record{Topic: "orders", Partition: 3, Offset: 7, Key: []byte(key), Value: value}
		m, err := decodeEventuate(r, "")
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
		m2, err := decodeEventuate(again, "")
		if err != nil {
			t.Fatalf("decoding what was encoded: %v", err)
		}
		eventuatetest.CheckResent(t, m, m2, "Thu, 1 Jan 2026 00:00:00 GMT")
	})
}
