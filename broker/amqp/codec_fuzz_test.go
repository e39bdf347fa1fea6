package amqp

import (
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/internal/wiretest"
	"github.com/courier-go/courier/message"
)

// fieldValue returns a header value of the AMQP type kind picks, made
// from s and n, as another client may publish.
func fieldValue(kind uint8, s string, n int64) any {
	switch kind % 12 {
	case 0:
		return s
	case 1:
		return []byte(s)
	case 2:
		return n
	case 3:
		return int32(n)
	case 4:
		return float64(n) / 7
	case 5:
		return n%2 == 0
	case 6:
		return time.Unix(n%(1<<40), 0)
	case 7:
		return nil
	case 8:
		return amqp091.Decimal{Scale: uint8(n), Value: int32(n)}
	case 9:
		return amqp091.Table{s: n, "nested": amqp091.Table{"x": []byte(s)}}
	case 10:
		return []any{s, n, nil, amqp091.Table{}}
	}
	return uint8(n)
}

// FuzzDeliveries decodes deliveries whose headers have values of every
// AMQP type, as another client may publish them: decoding must never
// panic, and give every header a string and the message an ID that does
// not change on redelivery; and it sends messages with headers of any
// name and value Courier accepts through encode and back, each arriving
// as it was sent.
//
//	go test -fuzz FuzzDeliveries ./broker/amqp/
func FuzzDeliveries(f *testing.F) {
	f.Add("event-type", "OrderCreated", uint8(0), int64(1), "0000000000000001-0000000000000002", "")
	f.Add("ID", "x", uint8(9), int64(-5), "", "msg-1")
	f.Add("PARTITION_ID", "k\xff", uint8(10), int64(1<<62), "id", "")
	f.Fuzz(func(t *testing.T, k, v string, kind uint8, n int64, id, messageID string) {
		d := &amqp091.Delivery{Headers: amqp091.Table{k: fieldValue(kind, v, n), "other": fieldValue(kind+1, k, n)},
			MessageId: messageID, Exchange: "orders", RoutingKey: "0.1", Body: []byte(v)}
		m := decode(d)
		if m.ID == "" || decode(d).ID != m.ID {
			t.Fatalf("delivery %+v: ID %q, then %q", d.Headers, m.ID, decode(d).ID)
		}

		sent := &message.Message{ID: id, Headers: message.Headers{k: v}, Payload: []byte("p")}
		if message.ValidateChannel(id) != nil || (message.Limits{}).Check(sent) != nil {
			return // Send refuses it
		}
		out, err := encode("orders", sent, "2026-01-01T00:00:00Z", time.Unix(0, 0), 0)
		if err != nil {
			return // a header AMQP cannot carry, refused at Send
		}
		got := decode(&amqp091.Delivery{Headers: out.pub.Headers, MessageId: out.pub.MessageId, Body: out.pub.Body})
		wiretest.CheckArrived(t, sent, got, "orders", "2026-01-01T00:00:00Z")
	})
}
