package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/sqldb"
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
// relays share it. It counts what it did (Stats), which may be read while
// Publish runs; Publish itself is called by one goroutine at a time.
type RowPublisher struct {
	Producer          broker.Producer
	DeadLetterChannel string
	// Source names the relay in the dead-letter headers.
	Source string
	Limits message.Limits
	Logger *slog.Logger
	// Lease, when set, returns the keeper of the lease the relay
	// publishes under, or nil while it does not lead. Publishing stops
	// while the lease is not valid, and each Send runs under the lease
	// (LeaseKeeper.Bound): a Send in flight when the lease lapses is
	// abandoned before another relay can take the lease.
	Lease func() *LeaseKeeper

	published, deadLettered, sendErrors atomic.Uint64
	failure                             atomic.Pointer[sendFailure]
}

// sendFailure is the broker's failure that has lasted since the first
// failed Send after the last confirmed one.
type sendFailure struct {
	since time.Time
	last  error
	// keeper is the lease the failure happened under: once it ended,
	// the failure is its past leadership's, not the broker's state now.
	keeper *LeaseKeeper
}

// PublishStats is what a RowPublisher did so far.
type PublishStats struct {
	Published    uint64 // rows the broker confirmed
	DeadLettered uint64 // rows sent to the dead-letter channel
	// SendErrors counts the Sends the broker refused or did not
	// confirm, each one destination's batch of rows (a Send abandoned
	// because the relay stopped or its lease lapsed is not counted).
	SendErrors uint64
	// FailingSince is set while publishing fails: it is the time of the
	// first failed Send since the last confirmed one, within the current
	// leadership. It is zero once a Send succeeds, and after the lease
	// the failures happened under ended.
	FailingSince time.Time
	// LastError is the last failed Send's error while FailingSince is set.
	LastError error
}

// Stats returns the counters; it is safe for concurrent use.
func (p *RowPublisher) Stats() PublishStats {
	s := PublishStats{Published: p.published.Load(), DeadLettered: p.deadLettered.Load(), SendErrors: p.sendErrors.Load()}
	if f := p.failure.Load(); f != nil && (f.keeper == nil || !f.keeper.ended()) {
		s.FailingSince, s.LastError = f.since, f.last
	}
	return s
}

// RelayStats is the Stats of the relay that publishes with p, given
// whether it leads and its error count.
func (p *RowPublisher) RelayStats(leader bool, errs uint64) Stats {
	ps := p.Stats()
	return Stats{Leader: leader, Published: ps.Published, DeadLettered: ps.DeadLettered, Errors: errs,
		PublishErrors: ps.SendErrors, PublishFailingSince: ps.FailingSince, LastPublishError: ps.LastError}
}

// PublishResult says what Publish did.
type PublishResult struct {
	// Done lists the IDs of the rows the broker confirmed, published or
	// dead-lettered: a relay may now remove or acknowledge them.
	Done         []string
	Published    int
	DeadLettered int
	// Err joins the failures; rows not in Done wait for the next attempt.
	// It wraps sqldb.ErrLeaseLost if a Send was abandoned because the
	// lease lapsed.
	Err error
}

// errNotLeading stops Publish before a Send when the relay may not
// publish: it does not lead, or its lease is not certainly held.
var errNotLeading = errors.New("outbox: not leading")

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
	stop := false // the lease does not allow another Send
	for _, dest := range order {
		err := p.send(ctx, p.Producer, dest, groups[dest])
		if errors.Is(err, errNotLeading) {
			stop = true
			break
		}
		if err != nil {
			// Later rows of this destination wait for the next attempt,
			// so its order holds; other destinations go on.
			res.Err = errors.Join(res.Err, fmt.Errorf("publishing %d messages to %q: %w", len(groups[dest]), dest, err))
			if stop = errors.Is(err, sqldb.ErrLeaseLost); stop {
				break
			}
			continue
		}
		res.Done = append(res.Done, ids[dest]...)
		res.Published += len(ids[dest])
	}
	if len(dead) > 0 && !stop {
		// Through the broker's way for dead letters, where it has one
		// (RabbitMQ keeps them in a queue even if nothing reads the
		// channel).
		switch err := p.send(ctx, broker.DeadLetters(p.Producer), p.DeadLetterChannel, dead); {
		case errors.Is(err, errNotLeading):
		case err != nil:
			res.Err = errors.Join(res.Err, fmt.Errorf("dead-lettering %d rows to %q: %w", len(dead), p.DeadLetterChannel, err))
		default:
			res.Done = append(res.Done, deadID...)
			res.DeadLettered = len(dead)
			if p.Logger != nil {
				p.Logger.Error("courier: outbox rows dead-lettered", slog.Int("rows", len(dead)),
					slog.String("channel", p.DeadLetterChannel), slog.String("first_reason", dead[0].Header(message.HeaderDeadLetterReason)))
			}
		}
	}
	p.published.Add(uint64(res.Published))
	p.deadLettered.Add(uint64(res.DeadLettered))
	return res
}

// send sends msgs to channel through to under the lease, and keeps count
// of the broker's failures. It returns errNotLeading, without sending, if the
// relay may not publish now, and an error wrapping sqldb.ErrLeaseLost if
// the lease lapsed during the Send.
func (p *RowPublisher) send(ctx context.Context, to broker.Producer, channel string, msgs []*message.Message) error {
	sctx := ctx
	var keeper *LeaseKeeper
	if p.Lease != nil {
		if keeper = p.Lease(); keeper == nil || !keeper.Valid() {
			return errNotLeading
		}
		var cancel context.CancelFunc
		sctx, cancel = keeper.Bound(ctx)
		defer cancel()
	}
	err := to.Send(sctx, channel, msgs...)
	switch {
	case err == nil:
		p.failure.Store(nil)
	case ctx.Err() != nil:
		// The relay stops: not the broker's failure.
	case sctx.Err() != nil:
		err = fmt.Errorf("send abandoned: %w (%w)", context.Cause(sctx), err)
	default:
		p.sendErrors.Add(1)
		f := &sendFailure{since: time.Now(), last: err, keeper: keeper}
		if old := p.failure.Load(); old != nil && old.keeper == keeper {
			f.since = old.since
		}
		p.failure.Store(f)
	}
	return err
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
