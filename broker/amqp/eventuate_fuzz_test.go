package amqp

import (
	"context"
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/internal/eventuate/eventuatetest"
)

// FuzzEventuateDeliveries decodes delivery bodies of any content as
// Eventuate's envelope: decoding never panics; a body it accepts gives a
// message with an ID and a destination, which encodes into a publishing
// that decodes to the same message; one it refuses is marked for the
// dead-letter channel.
//
//	go test -fuzz FuzzEventuateDeliveries ./broker/amqp/
func FuzzEventuateDeliveries(f *testing.F) {
	for _, b := range eventuatetest.Envelopes(f) {
		f.Add(b, "k")
	}
	f.Add([]byte(`{"payload":"","headers":{}}`), "")
	f.Add([]byte(`not json`), "\xff")
	b := &Broker{cfg: config{eventuate: true}}
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		d := &amqp091.Delivery{Exchange: "orders", RoutingKey: key, Body: body}
		ctx, m := b.decodeDelivery(context.Background(), d)
		if ctx != context.Background() {
			if string(m.Payload) != string(body) {
				t.Fatalf("a refused body is not kept as it was: %q", m.Payload)
			}
			return
		}
		if m.ID == "" || m.Destination() == "" {
			t.Fatalf("message %+v without an ID or a destination", m)
		}
		out, err := encodeEventuate(m.Destination(), m, "Thu, 1 Jan 2026 00:00:00 GMT")
		if err != nil {
			return // a partition key longer than a routing key
		}
		_, m2 := b.decodeDelivery(context.Background(), &amqp091.Delivery{Exchange: "orders", RoutingKey: out.key, Headers: out.pub.Headers, Body: out.pub.Body})
		eventuatetest.CheckResent(t, m, m2, "Thu, 1 Jan 2026 00:00:00 GMT")
	})
}
