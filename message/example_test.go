package message_test

import (
	"errors"
	"fmt"

	"github.com/courier-go/courier/message"
)

func ExampleNewBuilder() {
	m := message.NewBuilder([]byte(`{"orderId":"o-1"}`)).
		WithPartitionKey("o-1").
		WithContentType("application/json").
		WithHeader(message.HeaderEventType, "OrderCreated").
		Build()
	fmt.Println(m.PartitionKey(), m.Header(message.HeaderEventType), len(m.ID))
	// Output: o-1 OrderCreated 33
}

func ExampleLimits_Check() {
	limits := message.Limits{MaxPayloadBytes: 4}
	err := limits.Check(message.NewBuilder([]byte("too long")).WithID("m-1").Build())
	fmt.Println(errors.Is(err, message.ErrPayloadTooLarge))
	fmt.Println(err)
	// Output:
	// true
	// message: payload too large: message m-1 has 8 bytes of payload, over the limit of 4 bytes
}

func ExampleValidateChannel() {
	fmt.Println(message.ValidateChannel("orders.events"))
	fmt.Println(message.ValidateChannel("orders events"))
	// Output:
	// <nil>
	// message: invalid channel name: "orders events" contains ' '; use letters, digits, '.', '_' and '-'
}
