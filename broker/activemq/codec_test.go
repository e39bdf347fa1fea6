package activemq

import (
	"errors"
	"testing"
	"time"

	"github.com/courier-go/courier/broker/activemq/internal/stomp"
	"github.com/courier-go/courier/message"
)

// TestCodecRoundTrip: headers whose names STOMP or ActiveMQ read
// themselves travel under escaped names and come back as sent; the ID
// moves into Message.ID; the message group follows the partition key.
func TestCodecRoundTrip(t *testing.T) {
	m := message.NewBuilder([]byte("payload")).WithID("id-1").WithPartitionKey("order-7").Build()
	for _, name := range []string{"destination", "content-type", "type", "JMSType", "activemq.x", "expires", escapedPrefix + "x", "plain", "a:b"} {
		m.SetHeader(name, "value of "+name)
	}
	f, err := encode("orders", m, "DATE", 16)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Value("destination"); got != "/topic/VirtualTopic.orders" {
		t.Errorf("destination %q", got)
	}
	if got := f.Value("JMSXGroupID"); got != groupID(shardOf("order-7", 16)) {
		t.Errorf("group %q", got)
	}
	// What ActiveMQ adds to the frame it delivers.
	delivered := &stomp.Frame{Command: "MESSAGE", Body: f.Body, Headers: append([]stomp.Header{
		{Name: "message-id", Value: "ID:x-1"}, {Name: "subscription", Value: "0"}, {Name: "ack", Value: "a1"},
		{Name: "destination", Value: "/queue/Consumer.s.VirtualTopic.orders"}, {Name: "timestamp", Value: "1"},
	}, f.Headers...)}
	got := decode("orders", delivered, time.Now())
	if got.ID != "id-1" || string(got.Payload) != "payload" {
		t.Fatalf("got ID %q payload %q", got.ID, got.Payload)
	}
	for k, v := range m.Headers {
		if got.Header(k) != v {
			t.Errorf("header %q = %q, want %q", k, got.Header(k), v)
		}
	}
	if got.Destination() != "orders" || got.Header(message.HeaderDate) != "DATE" {
		t.Errorf("headers %v", got.Headers)
	}
	for _, h := range []string{"message-id", "subscription", "ack", "timestamp", message.HeaderID} {
		if _, ok := got.Headers.Lookup(h); ok {
			t.Errorf("header %q leaked into the message", h)
		}
	}

	// A message from another client without an ID gets the same one on
	// every delivery.
	foreign := &stomp.Frame{Command: "MESSAGE", Headers: []stomp.Header{{Name: "message-id", Value: "ID:y-9"}}}
	a, b := decode("orders", foreign, time.Now()), decode("orders", foreign, time.Now())
	if a.ID == "" || a.ID != b.ID || a.Destination() != "orders" {
		t.Errorf("foreign message: IDs %q and %q, destination %q", a.ID, b.ID, a.Destination())
	}
}

// TestEncodeRefusesHeaderLinesActiveMQRefuses: one header line over
// ActiveMQ's 10 KiB limit, within Courier's total, is refused by Send
// with message.ErrHeadersTooLarge instead of breaking the connection.
func TestEncodeRefusesHeaderLinesActiveMQRefuses(t *testing.T) {
	m := message.NewBuilder(nil).WithID("id").WithHeader("big", string(make([]byte, 11<<10))).Build()
	if _, err := encode("c", m, "d", 4); !errors.Is(err, message.ErrHeadersTooLarge) {
		t.Fatalf("a header line of 11 KiB: %v, want message.ErrHeadersTooLarge", err)
	}
}
