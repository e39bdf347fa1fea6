package kafka

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/courier-go/courier/internal/wiretest"
	"github.com/courier-go/courier/message"
)

// consumed returns the record a consumer gets for the record r read from
// the wire.
func consumed(r *kmsg.Record) *kgo.Record {
	rec := &kgo.Record{Topic: "orders", Partition: 3, Offset: 7, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return rec
}

// FuzzRecords decodes records of any content as Kafka's wire format
// carries them, as another producer may write them: decoding must never
// panic, and give the message the record's headers, its key as the
// partition key and an ID; and it sends messages with headers of any
// name and value Courier accepts through the record format and back,
// each arriving as it was sent.
//
//	go test -fuzz FuzzRecords ./broker/kafka/
func FuzzRecords(f *testing.F) {
	valid := encode("orders", "2026-01-01T00:00:00Z", &message.Message{ID: "0000000000000001-0000000000000002",
		Headers: message.Headers{"PARTITION_ID": "o-1", "event-type": "OrderCreated"}, Payload: []byte(`{}`)})
	wire := (&kmsg.Record{Key: valid.Key, Value: valid.Value, Headers: []kmsg.Header{{Key: "ID", Value: []byte("x")}}}).AppendTo(nil)
	f.Add(wire, "event-type", "OrderCreated", "o-1", "0000000000000001-0000000000000002")
	f.Add(wire[:len(wire)/2], "ID", "", "", "id")
	f.Add([]byte{}, "DESTINATION", "elsewhere", "k\xff", "")
	f.Fuzz(func(t *testing.T, raw []byte, k, v, key, id string) {
		var r kmsg.Record
		if r.ReadFrom(raw) == nil {
			m := decode(consumed(&r))
			if m.ID == "" {
				t.Fatal("a message without an ID")
			}
			last := map[string]string{}
			for _, h := range r.Headers {
				last[h.Key] = string(h.Value)
			}
			for k, v := range last {
				if k == message.HeaderID && v != "" && m.ID != v || k != message.HeaderID && m.Headers[k] != v {
					t.Fatalf("header %q = %q arrived as %q (ID %q)", k, v, m.Headers[k], m.ID)
				}
			}
		}
		m := &message.Message{ID: id, Headers: message.Headers{k: v}, Payload: []byte("p")}
		if key != "" {
			m.Headers[message.HeaderPartitionID] = key
		}
		if message.ValidateChannel(id) != nil || (message.Limits{}).Check(m) != nil {
			return // Send refuses it
		}
		sent := encode("orders", "2026-01-01T00:00:00Z", m)
		w := &kmsg.Record{Key: sent.Key, Value: sent.Value}
		for _, h := range sent.Headers {
			w.Headers = append(w.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		var back kmsg.Record
		if err := back.ReadFrom(w.AppendTo(nil)); err != nil {
			t.Fatalf("Kafka cannot read the record Courier wrote: %v", err)
		}
		got := decode(consumed(&back))
		wiretest.CheckArrived(t, m, got, "orders", "2026-01-01T00:00:00Z")
	})
}
