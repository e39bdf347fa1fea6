// Package eventuatetest holds what the tests of Courier's Eventuate Tram
// profile share: the fixtures of Eventuate's formats, taken from its
// sources (internal/eventuate/testdata, whose README names the files and
// commits), the Java types they carry, and the round trip every broker in
// Eventuate's format passes.
package eventuatetest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/events"
	"github.com/courier-go/courier/message"
)

// The channels, keys and IDs of the fixtures.
const (
	EventChannel   = "net.chrisrichardson.ftgo.orderservice.domain.Order"
	EventKey       = "1511300065921"
	EventID        = "0000018c39a0b5e2-0242ac1200050000"
	CommandChannel = "customerService"
	CommandKey     = "7f6e2a5c-3b1d-4f0e-9a8b-2c4d6e8f0a1b"
	CommandID      = "0000018c39a0b9ca-0242ac1200050000"
	ReplyChannel   = "io.eventuate.examples.tram.sagas.ordersandcustomers.orders.sagas.createorder.CreateOrderSaga-reply"
)

// Fixture returns the bytes of the fixture file name (such as
// "event.envelope").
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("eventuatetest: cannot locate the fixtures")
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Envelopes returns the envelope fixtures that Eventuate publishes, as
// seeds of fuzz targets.
func Envelopes(t testing.TB) [][]byte {
	var out [][]byte
	for _, name := range []string{"event.envelope", "command.envelope", "text.envelope"} {
		out = append(out, Fixture(t, name))
	}
	return out
}

// OrderCreated is the event of event.envelope, under its Java class name.
type OrderCreated struct {
	RestaurantName  string `json:"restaurantName"`
	DeliveryAddress string `json:"deliveryAddress"`
}

func (OrderCreated) EventType() string {
	return "net.chrisrichardson.ftgo.orderservice.api.events.OrderCreatedEvent"
}

// ReserveCredit is the command of command.envelope, under its Java class
// name.
type ReserveCredit struct {
	CustomerID int64 `json:"customerId"`
	OrderID    int64 `json:"orderId"`
}

func (ReserveCredit) CommandType() string {
	return "io.eventuate.examples.tram.sagas.ordersandcustomers.customers.api.commands.ReserveCreditCommand"
}

// CreditReserved is the reply of reply.envelope, under its Java class name.
type CreditReserved struct {
	CreditReservationID int `json:"creditReservationId"`
}

func (CreditReserved) ReplyType() string {
	return "io.eventuate.examples.tram.sagas.ordersandcustomers.customers.api.replies.CustomerCreditReserved"
}

// Quiet is a subscription option that keeps the handlers' logs out of the
// test's output.
func Quiet() broker.SubscribeOption {
	return broker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// Eventuate is Eventuate's side of a broker, through the broker's plain
// client: Publish sends an envelope to a channel with a key, as
// Eventuate's producer does; Reply returns the body and key of the first
// message on ReplyChannel, as Eventuate's consumer gets it.
type Eventuate struct {
	Publish func(t *testing.T, channel, key string, envelope []byte)
	Reply   func(t *testing.T) (envelope []byte, key string)
}

// RoundTrip checks b, a broker in Eventuate's format: the event and the
// command that Eventuate publishes are dispatched by their Java type names
// to Courier handlers subscribed as kitchen and customer, and the reply
// reaches Eventuate's consumer as Eventuate's CommandDispatcher would send
// it, byte for byte (reply.envelope, with the reply's own ID and DATE),
// keyed by the command's PARTITION_ID.
func RoundTrip(t *testing.T, b broker.Broker, eventuate Eventuate, kitchen, customer string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	got := make(chan events.Event[OrderCreated], 1)
	ed := events.NewDispatcher()
	events.On(ed, EventChannel, func(_ context.Context, e events.Event[OrderCreated]) error {
		got <- e
		return nil
	})
	esub, err := ed.Subscribe(ctx, b, kitchen, Quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer esub.Close(context.Background())
	eventuate.Publish(t, EventChannel, EventKey, Fixture(t, "event.envelope"))
	select {
	case e := <-got:
		if e.ID != EventID || e.AggregateID != EventKey || e.Payload.RestaurantName != "Ajanta" || e.Payload.DeliveryAddress != "1 Main St\nApt \"B\"" {
			t.Errorf("event %+v", e)
		}
	case <-ctx.Done():
		t.Fatal("the event did not arrive")
	}

	d := commands.NewDispatcher(b)
	commands.Handle(d, func(_ context.Context, cmd commands.Command[ReserveCredit]) (commands.Reply, error) {
		if cmd.ID != CommandID || cmd.Payload.CustomerID != 1511300065921 || cmd.Payload.OrderID != 4 {
			t.Errorf("command %+v", cmd)
		}
		return commands.Success(CreditReserved{CreditReservationID: 7}), nil
	})
	csub, err := d.Subscribe(ctx, b, customer, CommandChannel, Quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer csub.Close(context.Background())
	eventuate.Publish(t, CommandChannel, CommandKey, Fixture(t, "command.envelope"))

	body, key := eventuate.Reply(t)
	var env struct {
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("reply %s: %v", body, err)
	}
	want := strings.NewReplacer("${ID}", env.Headers["ID"], "${DATE}", env.Headers["DATE"]).Replace(string(Fixture(t, "reply.envelope")))
	if string(body) != want {
		t.Errorf("reply =\n%s\nwant Eventuate's\n%s", body, want)
	}
	if key != CommandKey {
		t.Errorf("reply key %q, want the command's PARTITION_ID %q", key, CommandKey)
	}
	if len(env.Headers["ID"]) != 33 {
		t.Errorf("reply ID %q", env.Headers["ID"])
	}
	if _, err := time.Parse("Mon, 2 Jan 2006 15:04:05 GMT", env.Headers["DATE"]); err != nil {
		t.Errorf("reply DATE: %v", err)
	}
}

// CheckResent fails t unless again is m as it arrives after it was sent
// again in Eventuate's format with the DATE date: the same ID and
// payload, and m's headers with date as DATE if m had none and, if m had
// no PARTITION_ID, its ID, by which it was keyed.
func CheckResent(t *testing.T, m, again *message.Message, date string) {
	t.Helper()
	want := maps.Clone(m.Headers)
	if _, ok := want[message.HeaderDate]; !ok {
		want[message.HeaderDate] = date
	}
	if _, ok := want[message.HeaderPartitionID]; !ok {
		want[message.HeaderPartitionID] = m.ID
	}
	if again.ID != m.ID || string(again.Payload) != string(m.Payload) || !maps.Equal(again.Headers, want) {
		t.Fatalf("sent again: %+v, want %+v with headers %v", again, m, want)
	}
}

// Batch returns a batch of Eventuate's CDC holding values keyed by keys
// (keys[i] for values[i]), written by the SBE schema as testdata's
// batch.sbe is (its README says how).
func Batch(keys, values []string) []byte {
	b := []byte("a8c79db675e14c4cbf1eb77d0d6d0f00")
	b = binary.LittleEndian.AppendUint16(b, 0) // blockLength
	b = binary.LittleEndian.AppendUint16(b, 1) // templateId
	b = binary.LittleEndian.AppendUint16(b, 1) // schemaId
	b = binary.LittleEndian.AppendUint16(b, 0) // version
	b = append(b, 0, 0, 0, 0)                  // no batch headers
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(values)))
	for i, v := range values {
		b = append(b, 0, 0, 0, 0) // no message headers
		b = binary.LittleEndian.AppendUint32(b, uint32(len(keys[i])))
		b = append(b, keys[i]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	return b
}
