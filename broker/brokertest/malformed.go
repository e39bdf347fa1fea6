package brokertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// malformedCases are messages that Courier's Send refuses, published by a
// client that is not Courier. Each carries the partition key of the test's
// good messages, so that it sits in front of them in their shard.
func malformedCases(maxPayload int) []struct {
	name    string
	headers message.Headers
	payload []byte
} {
	long := make(message.Headers)
	for i := range 80 {
		long[fmt.Sprintf("x-filler-%02d", i)] = strings.Repeat("h", 1<<10)
	}
	// Just under message.DefaultMaxHeaderBytes with the partition key, and
	// under NATS's 64 KiB of encoded headers: Send would take it, but its
	// dead letter, with the dead-letter headers added, is over the limit.
	full := make(message.Headers)
	for i := range 16 {
		full[fmt.Sprintf("x-filler-%02d", i)] = strings.Repeat("f", 4074)
	}
	return []struct {
		name    string
		headers message.Headers
		payload []byte
	}{
		{"EmptyHeaderName", message.Headers{"": "no name", "x-ok": "kept"}, []byte("poison")},
		{"HeadersOverTheLimit", long, []byte("poison")},
		{"HeadersAtTheLimit", full, []byte("poison")},
		{"PayloadOverTheLimit", nil, append([]byte("poison"), bytes.Repeat([]byte{'p'}, maxPayload)...)},
		{"InvalidUTF8Name", message.Headers{"x-bad\xff": "v"}, []byte("poison")},
		{"InvalidUTF8Value", message.Headers{"x-value": "bad\xfe\xfd"}, []byte("poison")},
		{"HeaderNameOver255Bytes", message.Headers{"x-" + strings.Repeat("n", 300): "v"}, []byte("poison")},
	}
}

// testMalformed: a malformed message from another client, which the
// handler fails on, is dead-lettered (in a bounded envelope if the broker
// refuses it as it is) and the messages of its key behind it are handled,
// in order. Nothing stalls the shard.
func testMalformed(t *testing.T, e *env) {
	if e.suite.Raw == nil {
		t.Fatal("Suite.Raw is not set: the adapter must say how a client that is not Courier publishes")
	}
	for _, tc := range malformedCases(e.suite.Features.maxPayload()) {
		t.Run(tc.name, func(t *testing.T) {
			ch, id := e.name(tc.name), e.name(tc.name+"-sub")
			dlq := e.name(tc.name + "-dlq")
			const key = "malformed-key"
			rec := newRecorder()
			good := rec.handler(0)
			sub := func(ctx context.Context, m *message.Message) error {
				if bytes.HasPrefix(m.Payload, []byte("poison")) {
					return broker.Permanent(errors.New("poison: cannot handle it"))
				}
				return good(ctx, m)
			}
			e.subscribe(id, []string{ch}, sub, fastRetry, broker.WithDeadLetterChannel(dlq))
			dead := newRecorder()
			e.subscribe(e.name(tc.name+"-dlq-reader"), []string{dlq}, dead.handler(0))

			headers := tc.headers.Clone()
			if headers == nil {
				headers = message.Headers{}
			}
			headers[message.HeaderPartitionID] = key
			err := e.suite.Raw(t, e.b, ch, key, headers, tc.payload)
			if errors.Is(err, ErrUnpublishable) {
				t.Skipf("the broker refuses such a message, so no consumer meets one: %v", err)
			}
			if err != nil {
				t.Fatalf("publishing with the raw client: %v", err)
			}
			var msgs []*message.Message
			for i := range 3 {
				msgs = append(msgs, keyed(key, i))
			}
			e.send(ch, msgs...)
			e.eventually("the good messages behind the malformed one", func() bool { return rec.unique() == len(msgs) })
			e.eventually("the malformed message's dead letter", func() bool { return dead.unique() == 1 })
			for i, m := range rec.all() {
				if e.concurrent() {
					break // no order to check
				}
				if m.ID != msgs[i].ID {
					t.Fatalf("good message %d is %s, want %s: out of order", i, m.ID, msgs[i].ID)
				}
			}
			d := dead.all()[0]
			if reason := d.Header(message.HeaderDeadLetterReason); !strings.HasPrefix(reason, "poison: cannot handle it") {
				t.Errorf("dead letter reason %q", reason)
			}
			var payloadOK bool
			switch env := d.Header(message.HeaderDeadLetterEnvelope); env {
			case "": // the original
				payloadOK = bytes.Equal(d.Payload, tc.payload)
			case broker.EnvelopeBounded:
				payloadOK = bytes.Equal(d.Payload, tc.payload[:min(len(tc.payload), broker.BoundedPayloadBytes)])
			case broker.EnvelopeMinimal:
				payloadOK = len(d.Payload) == 0
			default:
				t.Errorf("dead letter in unknown envelope %q", env)
			}
			if !payloadOK {
				t.Errorf("dead letter payload of %d bytes does not match its envelope (the original had %d bytes)", len(d.Payload), len(tc.payload))
			}
			if d.Header(message.HeaderDeadLetterChannel) != ch || d.Header(message.HeaderDeadLetterSubscriberID) != id {
				t.Errorf("dead letter headers %v", d.Headers)
			}
			t.Logf("dead letter in the %q envelope (empty: the original), reason %q", d.Header(message.HeaderDeadLetterEnvelope), d.Header(message.HeaderDeadLetterReason))
		})
	}
}
