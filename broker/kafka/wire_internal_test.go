package kafka

import (
	"maps"
	"strconv"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/message"
)

// TestEncodeDecodeRoundTrip checks that encode and decode, which share
// buffers between values, give back every header whatever their number,
// with and without a key and a DATE of the message's own.
func TestEncodeDecodeRoundTrip(t *testing.T) {
	const ch, date = "wire.rt", "Tue, 25 Nov 2026 09:00:00 GMT"
	for _, tc := range []struct {
		name    string
		key     string
		headers int
		date    bool
	}{
		{"bare", "", 0, false},
		{"keyed", "order-7", 0, false},
		{"keyed with headers", "order-7", 6, false},
		{"own date", "", 3, true},
		{"empty values", "k", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := message.New([]byte("payload"))
			if tc.key != "" {
				m.SetHeader(message.HeaderPartitionID, tc.key)
			}
			for i := range tc.headers {
				v := "value-" + strconv.Itoa(i)
				if tc.name == "empty values" {
					v = ""
				}
				m.SetHeader("h"+strconv.Itoa(i), v)
			}
			if tc.date {
				m.SetHeader(message.HeaderDate, "my date")
			}
			r := encode(ch, date, m)
			if got := string(r.Key); got != tc.key {
				t.Errorf("key = %q, want %q", got, tc.key)
			}
			// What the consumer sees: a copy, as read from the wire.
			in := &kgo.Record{Topic: ch, Partition: 3, Offset: 9, Key: clone(r.Key), Value: clone(r.Value)}
			for _, h := range r.Headers {
				in.Headers = append(in.Headers, kgo.RecordHeader{Key: h.Key, Value: clone(h.Value)})
			}
			got := decode(in)
			want := maps.Clone(m.Headers)
			if want == nil {
				want = message.Headers{}
			}
			want[message.HeaderDestination] = ch
			if !tc.date {
				want[message.HeaderDate] = date
			}
			if got.ID != m.ID {
				t.Errorf("ID = %q, want %q", got.ID, m.ID)
			}
			if !maps.Equal(got.Headers, want) {
				t.Errorf("headers = %v, want %v", got.Headers, want)
			}
			if string(got.Payload) != "payload" {
				t.Errorf("payload = %q", got.Payload)
			}
		})
	}
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// BenchmarkWire measures encoding and decoding a keyed message.
func BenchmarkWire(b *testing.B) {
	m := message.New(make([]byte, 64))
	m.SetHeader(message.HeaderPartitionID, "key-17")
	b.ReportAllocs()
	for b.Loop() {
		decode(encode("bench.events", "Tue, 25 Nov 2026 09:00:00 GMT", m))
	}
}

// TestDecodeWithoutID: a record from a plain client, without an ID header,
// gets an ID made of its coordinates, the same on every delivery.
func TestDecodeWithoutID(t *testing.T) {
	r := &kgo.Record{Topic: "orders", Partition: 3, Offset: 9, Value: []byte("x")}
	if got := decode(r).ID; got != "orders-3-9" || decode(r).ID != got {
		t.Fatalf("ID = %q, want orders-3-9", got)
	}
}
