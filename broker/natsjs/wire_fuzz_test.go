package natsjs

import (
	"bytes"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/courier-go/courier/internal/wiretest"
	"github.com/courier-go/courier/message"
)

// delivered is a JetStream message as a consumer receives it: only its
// headers and data matter to decode.
type delivered struct {
	jetstream.Msg
	h    nats.Header
	data []byte
}

func (d delivered) Headers() nats.Header { return d.h }
func (d delivered) Data() []byte         { return d.data }

// wireHeaders writes h as a NATS message's header block.
func wireHeaders(h nats.Header) []byte {
	var b bytes.Buffer
	b.WriteString("NATS/1.0\r\n")
	for k, vs := range h {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// FuzzHeaders sends messages with headers of any name and value that
// Courier accepts, through the escaping of headers NATS cannot carry and
// NATS's own header block, and checks that each arrives as it was sent;
// and it decodes header blocks of any content, as another client may
// publish them, which must never panic.
//
//	go test -fuzz FuzzHeaders ./broker/natsjs/
func FuzzHeaders(f *testing.F) {
	f.Add("event-type", "OrderCreated", "Courier-Hdr-x", " padded\tvalue ", "0000000000000001-0000000000000002",
		[]byte("NATS/1.0\r\nCourier-Hdr-%20: %zz\r\nNats-Msg-Id: 1\r\n\r\n"))
	f.Add("nats-expected-stream", "a\r\nb", "ü name", "", "id", []byte("NATS/1.0 503\r\n\r\n"))
	f.Add("ID", "x", "DESTINATION", "y", "", []byte{})
	cs := &channelStream{channel: "orders", stream: "courier_orders", shards: 1, subjects: []string{"courier.orders.0"}}
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, id string, raw []byte) {
		if h, err := nats.DecodeHeadersMsg(raw); err == nil {
			decode(delivered{h: h}, &jetstream.MsgMetadata{Stream: "s"})
		}
		m := &message.Message{ID: id, Headers: message.Headers{k1: v1, k2: v2}, Payload: []byte("p")}
		if message.ValidateChannel(id) != nil || (message.Limits{}).Check(m) != nil {
			return // Send refuses it
		}
		sent := encode(cs, 0, "2026-01-01T00:00:00Z", m)
		h, err := nats.DecodeHeadersMsg(wireHeaders(sent.Header))
		if err != nil {
			t.Fatalf("NATS cannot read the headers Courier wrote: %v\n%q", err, wireHeaders(sent.Header))
		}
		got := decode(delivered{h: h, data: sent.Data}, nil)
		wiretest.CheckArrived(t, m, got, "orders", "2026-01-01T00:00:00Z")
	})
}
