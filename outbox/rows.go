package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// Row is one outbox row as a relay reads it, from a query or from the
// database's transaction log.
type Row struct {
	ID          string
	Destination string
	Headers     string // the headers column: a JSON object of strings
	Payload     []byte
}

// Message decodes the row into the message to publish, or says why it
// cannot be published: undecodable headers, an invalid destination, a
// message over limits.
func (rw Row) Message(limits message.Limits) (*message.Message, error) {
	var headers message.Headers
	if err := json.Unmarshal([]byte(rw.Headers), &headers); err != nil {
		return nil, fmt.Errorf("undecodable headers: %w", err)
	}
	if err := message.ValidateChannel(rw.Destination); err != nil {
		return nil, fmt.Errorf("invalid destination: %w", err)
	}
	delete(headers, message.HeaderID)
	m := &message.Message{ID: rw.ID, Headers: headers, Payload: rw.Payload}
	if err := limits.Check(m); err != nil {
		return nil, err
	}
	return m, nil
}

// RowPublisher publishes outbox rows: each destination's rows in order, in
// one Send per destination, and rows that cannot be published to a
// dead-letter channel. The polling relay and the transaction-log tailing
// relays share it.
type RowPublisher struct {
	Producer          broker.Producer
	DeadLetterChannel string
	// Source names the relay in the dead-letter headers.
	Source string
	Limits message.Limits
	Logger *slog.Logger
	// Valid, when set, is asked before each Send; publishing stops when
	// it says false (the relay lost its lease).
	Valid func() bool
}

// PublishResult says what Publish did.
type PublishResult struct {
	// Done lists the IDs of the rows the broker confirmed, published or
	// dead-lettered: a relay may now remove or acknowledge them.
	Done         []string
	Published    int
	DeadLettered int
	// Err joins the failures; rows not in Done wait for the next attempt.
	Err error
}

// Publish publishes rows, which are in commit order.
func (p *RowPublisher) Publish(ctx context.Context, rows []Row) PublishResult {
	var (
		order  []string // destinations in order of first appearance
		groups = map[string][]*message.Message{}
		ids    = map[string][]string{}
		dead   []*message.Message
		deadID []string
		res    PublishResult
	)
	for _, rw := range rows {
		m, err := rw.Message(p.Limits)
		if err != nil {
			dead = append(dead, p.deadLetter(rw, err))
			deadID = append(deadID, rw.ID)
			continue
		}
		if _, ok := groups[rw.Destination]; !ok {
			order = append(order, rw.Destination)
		}
		groups[rw.Destination] = append(groups[rw.Destination], m)
		ids[rw.Destination] = append(ids[rw.Destination], rw.ID)
	}
	valid := func() bool { return p.Valid == nil || p.Valid() }
	for _, dest := range order {
		if !valid() {
			break
		}
		if err := p.Producer.Send(ctx, dest, groups[dest]...); err != nil {
			// Later rows of this destination wait for the next attempt,
			// so its order holds; other destinations go on.
			res.Err = errors.Join(res.Err, fmt.Errorf("publishing %d messages to %q: %w", len(groups[dest]), dest, err))
			continue
		}
		res.Done = append(res.Done, ids[dest]...)
		res.Published += len(ids[dest])
	}
	if len(dead) > 0 && valid() {
		if err := p.Producer.Send(ctx, p.DeadLetterChannel, dead...); err != nil {
			res.Err = errors.Join(res.Err, fmt.Errorf("dead-lettering %d rows to %q: %w", len(dead), p.DeadLetterChannel, err))
		} else {
			res.Done = append(res.Done, deadID...)
			res.DeadLettered = len(dead)
			if p.Logger != nil {
				p.Logger.Error("courier: outbox rows dead-lettered", slog.Int("rows", len(dead)),
					slog.String("channel", p.DeadLetterChannel), slog.String("first_reason", dead[0].Header(message.HeaderDeadLetterReason)))
			}
		}
	}
	return res
}

// deadLetter wraps a row that cannot be published into a message for the
// dead-letter channel, with the reason and the raw headers.
func (p *RowPublisher) deadLetter(rw Row, reason error) *message.Message {
	payload := rw.Payload
	if err := p.Limits.Check(&message.Message{ID: "-", Payload: payload}); errors.Is(err, message.ErrPayloadTooLarge) {
		payload = nil // it cannot travel; the reason says why
	}
	id := rw.ID
	if id == "" || len(id) > 255 {
		id = message.NewID()
	}
	return &message.Message{ID: id, Payload: payload, Headers: message.Headers{
		message.HeaderDeadLetterReason:       reason.Error(),
		message.HeaderDeadLetterChannel:      truncate(rw.Destination, 255),
		message.HeaderDeadLetterSubscriberID: p.Source,
		message.HeaderDeadLetterAttempts:     "0",
		message.HeaderDeadLetterTime:         time.Now().UTC().Format(time.RFC3339Nano),
		HeaderDeadLetterRawHeaders:           truncate(rw.Headers, 4096),
	}}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
