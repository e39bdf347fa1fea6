package adapter

import (
	"errors"
	"strings"
	"testing"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// FuzzDeadLetterEnvelope builds the bounded and minimal dead letters of
// a message of any headers and payload, as another client may publish
// (names and values of any bytes, any length), with a failure reason of
// any text: each must be a message every broker carries (within the
// default limits, every header name and value printable UTF-8 that
// Courier accepts), and keep the ID, the payload's start and the reason's.
//
//	go test -fuzz FuzzDeadLetterEnvelope ./broker/adapter/
func FuzzDeadLetterEnvelope(f *testing.F) {
	f.Add("event-type", "OrderCreated", "\xff\x00bad", strings.Repeat("v", 5000), []byte("payload"), "handler failed", uint16(1))
	f.Add("", "", "dead_letter_reason", "old", []byte{}, "\xff", uint16(300))
	f.Add("ID", "x", "PARTITION_ID", "k\n", make([]byte, 1<<10), strings.Repeat("é", 3000), uint16(0))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string, payload []byte, reason string, copies uint16) {
		h := message.Headers{k1: v1, k2: v2}
		for i := range int(copies % 512) {
			h[k1+strings.Repeat("+", i%7)+string(rune('a'+i%26))+strings.Repeat("x", i)] = v2
		}
		msg := &message.Message{ID: "0000000000000001-0000000000000002", Headers: h, Payload: payload}
		info := broker.DeliveryInfo{Channel: "orders", Attempt: 3}
		for _, envelope := range []string{broker.EnvelopeBounded, broker.EnvelopeMinimal} {
			dead := newDeadLetter(msg, envelope, "kitchen", info, errors.New(reason), errors.New("refused"))
			if err := (message.Limits{}).Check(dead); err != nil {
				t.Fatalf("%s dead letter not a valid message: %v", envelope, err)
			}
			for k, v := range dead.Headers {
				if !carriable(k, v) {
					t.Fatalf("%s dead letter carries header %q = %q", envelope, k, v)
				}
			}
			if dead.ID != msg.ID || !strings.HasPrefix(string(payload), string(dead.Payload)) || dead.Headers[message.HeaderDeadLetterEnvelope] != envelope {
				t.Fatalf("%s dead letter of %q: %q, %d bytes of payload", envelope, msg.ID, dead.ID, len(dead.Payload))
			}
		}
	})
}
