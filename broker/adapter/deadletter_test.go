package adapter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// strictProducer refuses, as a broker does, what it cannot carry: messages
// over its limits, headers with an empty name, text that is not UTF-8 and
// header names over 255 bytes (as AMQP 0-9-1 does).
type strictProducer struct {
	limits message.Limits
	refuse func(*message.Message) error // an extra refusal, if set
	fakeProducer
}

func (s *strictProducer) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if err := s.check(m); err != nil {
			s.mu.Lock()
			s.calls++
			s.mu.Unlock()
			return err
		}
	}
	return s.fakeProducer.Send(ctx, channel, msgs...)
}

func (s *strictProducer) check(m *message.Message) error {
	if err := s.limits.Check(m); err != nil {
		return fmt.Errorf("strict: %w", err)
	}
	for k, v := range m.Headers {
		if !utf8.ValidString(k) || !utf8.ValidString(v) || len(k) > 255 {
			return fmt.Errorf("strict: header %q: %w", k, broker.Permanent(errors.New("not UTF-8, or too long")))
		}
	}
	if s.refuse != nil {
		return s.refuse(m)
	}
	return nil
}

// countingObserver records what an Observer is told.
type countingObserver struct {
	mu        sync.Mutex
	envelopes []string
	discarded []error
}

func (o *countingObserver) DeadLettered(_ context.Context, _ broker.DeliveryInfo, _, envelope string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.envelopes = append(o.envelopes, envelope)
}

func (o *countingObserver) Discarded(_ context.Context, _ broker.DeliveryInfo, _ string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.discarded = append(o.discarded, err)
}

// TestDeadLetterOfMalformedMessages: a message the broker would refuse to
// carry as it is (as a message from a client that is not Courier may be)
// still leaves its shard: it is dead-lettered in a bounded envelope that
// lists what was dropped, after one refused send, never retried as it was.
func TestDeadLetterOfMalformedMessages(t *testing.T) {
	limits := message.Limits{MaxPayloadBytes: 300 << 10, MaxHeaderBytes: 32 << 10}
	big := strings.Repeat("v", 3000)
	cases := []struct {
		name    string
		msg     *message.Message
		dropped []string // header names the reason must list
		cut     bool     // whether the payload is cut
	}{
		{"empty header name", &message.Message{ID: "m1", Headers: message.Headers{"": "x", "event-type": "Created"}, Payload: []byte("p")}, []string{`""`}, false},
		{"headers over the limit", &message.Message{ID: "m2", Headers: func() message.Headers {
			h := message.Headers{message.HeaderPartitionID: "k1"}
			for i := range 20 {
				h[fmt.Sprintf("h%02d", i)] = big
			}
			return h
		}(), Payload: []byte("p")}, []string{`"h05"`, `and 7 more`}, false},
		{"payload over the limit", &message.Message{ID: "m3", Payload: make([]byte, 400<<10)}, nil, true},
		{"invalid UTF-8", &message.Message{ID: "m4", Headers: message.Headers{"bad\xff": "v", "ok": "bad\xfe"}, Payload: []byte("p")}, []string{`"bad\xff"`, `"ok"`}, false},
		{"header name too long", &message.Message{ID: "m5", Headers: message.Headers{strings.Repeat("n", 300): "v"}, Payload: []byte("p")}, []string{`"nnnn`}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dlq := &strictProducer{limits: limits}
			obs := &countingObserver{}
			p := newTestProcessor(t, func(context.Context, *message.Message) error {
				return broker.Permanent(errors.New("cannot decode"))
			}, dlq, broker.WithObserver(obs))
			if err := p.Process(context.Background(), nil, "orders", 3, 0, tc.msg); err != nil {
				t.Fatalf("Process = %v", err)
			}
			sent := dlq.sent["svc.dead-letter"]
			if len(sent) != 1 || dlq.calls != 2 {
				t.Fatalf("%d dead letters in %d sends; want 1 in 2 (the original refused once)", len(sent), dlq.calls)
			}
			dead := sent[0]
			if dead.ID != tc.msg.ID || dead.Header(message.HeaderDeadLetterEnvelope) != broker.EnvelopeBounded {
				t.Fatalf("dead letter %s in envelope %q", dead.ID, dead.Header(message.HeaderDeadLetterEnvelope))
			}
			reason := dead.Header(message.HeaderDeadLetterReason)
			if !strings.HasPrefix(reason, "cannot decode; sent in a bounded dead-letter envelope") || len(reason) > maxReasonBytes {
				t.Errorf("reason %q", reason)
			}
			for _, name := range tc.dropped {
				if !strings.Contains(reason, name) {
					t.Errorf("reason %q does not list dropped header %s", reason, name)
				}
			}
			if got := dead.Header(message.HeaderDeadLetterPayloadBytes) != ""; got != tc.cut || (tc.cut && len(dead.Payload) != broker.BoundedPayloadBytes) {
				t.Errorf("payload of %d bytes, size header %q; want cut=%v", len(dead.Payload), dead.Header(message.HeaderDeadLetterPayloadBytes), tc.cut)
			}
			if tc.cut {
				sum := sha256.Sum256(tc.msg.Payload)
				if dead.Header(message.HeaderDeadLetterPayloadSHA256) != hex.EncodeToString(sum[:]) {
					t.Errorf("payload hash %q", dead.Header(message.HeaderDeadLetterPayloadSHA256))
				}
			}
			if tc.msg.Header("event-type") != "" && dead.Header("event-type") != tc.msg.Header("event-type") {
				t.Errorf("a carriable header was dropped: %v", dead.Headers)
			}
			if k := tc.msg.PartitionKey(); dead.PartitionKey() != k {
				t.Errorf("partition key %q, want %q", dead.PartitionKey(), k)
			}
			if len(obs.envelopes) != 1 || obs.envelopes[0] != broker.EnvelopeBounded || len(obs.discarded) != 0 {
				t.Errorf("observer told %v, discarded %v", obs.envelopes, obs.discarded)
			}
		})
	}
}

// TestDeadLetterMinimalThenDiscard: where the broker refuses the bounded
// envelope too, the minimal one goes; where it refuses that as well, the
// message is acknowledged and counted, after three sends in all.
func TestDeadLetterMinimalThenDiscard(t *testing.T) {
	msg := &message.Message{ID: "m1", Headers: message.Headers{message.HeaderPartitionID: "k1", "a": "b"}, Payload: []byte("payload")}
	refuseBounded := func(m *message.Message) error {
		if m.Header(message.HeaderDeadLetterEnvelope) != broker.EnvelopeMinimal {
			return fmt.Errorf("strict: %w", message.ErrHeadersTooLarge)
		}
		return nil
	}
	dlq := &strictProducer{refuse: refuseBounded}
	obs := &countingObserver{}
	p := newTestProcessor(t, func(context.Context, *message.Message) error { return broker.Permanent(errors.New("bad")) }, dlq, broker.WithObserver(obs))
	if err := p.Process(context.Background(), nil, "orders", 0, 0, msg); err != nil {
		t.Fatal(err)
	}
	sent := dlq.sent["svc.dead-letter"]
	if len(sent) != 1 || dlq.calls != 3 {
		t.Fatalf("%d dead letters in %d sends", len(sent), dlq.calls)
	}
	if d := sent[0]; d.Header("a") != "" || len(d.Payload) != 0 || d.PartitionKey() != "k1" || d.Header(message.HeaderDeadLetterPayloadBytes) != "7" {
		t.Errorf("minimal envelope: %v %q", d.Headers, d.Payload)
	}
	if len(obs.envelopes) != 1 || obs.envelopes[0] != broker.EnvelopeMinimal {
		t.Errorf("observer told %v", obs.envelopes)
	}

	never := &strictProducer{refuse: func(*message.Message) error { return broker.Permanent(errors.New("no such channel")) }}
	p = newTestProcessor(t, func(context.Context, *message.Message) error { return broker.Permanent(errors.New("bad")) }, never, broker.WithObserver(obs))
	if err := p.Process(context.Background(), nil, "orders", 0, 0, msg); err != nil {
		t.Fatal(err)
	}
	if never.calls != 3 || len(obs.discarded) != 1 || !strings.Contains(obs.discarded[0].Error(), "no such channel") {
		t.Fatalf("%d sends, discarded %v; want 3 sends and one discard", never.calls, obs.discarded)
	}
}

func TestBoundText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 10, "abc"},
		{"héllo", 2, "h"},
		{"a\xffb", 10, "a\uFFFDb"},
		{strings.Repeat("é", 10), 5, "éé"},
	} {
		if got := boundText(tc.in, tc.n); got != tc.want || !utf8.ValidString(got) {
			t.Errorf("boundText(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
