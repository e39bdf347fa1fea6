package relay_test

import (
	"encoding/json"
	"testing"

	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox/internal/relay"
)

// FuzzRowMessage feeds Row.Message, which decodes what producers wrote into
// the outbox table, arbitrary columns: it must return a valid message or
// an error, never panic, and keep the row's ID, payload and headers.
//
//	go test -fuzz FuzzRowMessage ./outbox/internal/relay/
func FuzzRowMessage(f *testing.F) {
	f.Add("0000000000000001-0000000000000002", "orders", `{"PARTITION_ID":"k1","DATE":"1"}`, []byte("payload"))
	f.Add("id", "orders and more", `{"a":"b"}`, []byte{0, 0xff})
	f.Add("", "", `{not json`, []byte(nil))
	f.Add("x", "orders", `{"ID":"other","":"empty"}`, []byte("\x00"))
	f.Add("x", "orders", `{"a":1}`, []byte{})
	f.Add("x", "orders", `null`, []byte{})
	limits := message.Limits{MaxPayloadBytes: 1 << 10, MaxHeaderBytes: 1 << 10}
	f.Fuzz(func(t *testing.T, id, destination, headers string, payload []byte) {
		rw := relay.Row{ID: id, Destination: destination, Headers: headers, Payload: payload}
		m, err := rw.Message(limits)
		if err != nil {
			if m != nil {
				t.Fatalf("Message returned %v and the error %v", m, err)
			}
			return
		}
		if m.ID != id || string(m.Payload) != string(payload) {
			t.Fatalf("Message changed the row: %+v from %+v", m, rw)
		}
		if _, ok := m.Headers[message.HeaderID]; ok {
			t.Fatal("the ID header survived: the row's id column is the message's ID")
		}
		if err := message.ValidateChannel(destination); err != nil {
			t.Fatalf("a message to the invalid destination %q: %v", destination, err)
		}
		var decoded map[string]string
		if err := json.Unmarshal([]byte(headers), &decoded); err != nil {
			t.Fatalf("headers %q accepted but not a JSON object of strings: %v", headers, err)
		}
		for k, v := range m.Headers {
			if decoded[k] != v {
				t.Fatalf("header %q = %q, the row says %q", k, v, decoded[k])
			}
		}
		if err := limits.Check(m); err != nil {
			t.Fatalf("a message over the limits: %v", err)
		}
	})
}
