package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox/internal/relay"
	"github.com/courier-go/courier/sqldb"
)

// publisher publishes outbox rows: each destination's rows in order, in
// one Send per destination, and rows that cannot be published to a
// dead-letter channel, through the broker's way for dead letters where it
// has one (broker.DeadLetters). It counts what it did (stats), which may
// be read while Publish runs; Publish itself is called by one goroutine at
// a time.
type publisher struct {
	producer   broker.Producer
	deadLetter string
	// source names the relay in the dead-letter headers.
	source string
	limits message.Limits
	logger *slog.Logger
	// lease returns the keeper of the lease the relay publishes under,
	// or nil while it does not lead. Publishing stops while the lease
	// is not valid, and each Send runs under the lease (Keeper.Bound):
	// a Send in flight when the lease lapses is abandoned before another
	// relay can take the lease.
	lease func() *relay.Keeper
	// errs, the relay's error count, counts each failed Send too, before
	// sendErrors does.
	errs *atomic.Uint64
	// observer is told of each confirmed Send; nil for none.
	observer RelayObserver

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
	keeper *relay.Keeper
}

// publishStats is what a publisher did so far.
type publishStats struct {
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

// stats returns the counters; it is safe for concurrent use.
func (p *publisher) stats() publishStats {
	s := publishStats{Published: p.published.Load(), DeadLettered: p.deadLettered.Load(), SendErrors: p.sendErrors.Load()}
	if f := p.failure.Load(); f != nil && (f.keeper == nil || !f.keeper.Ended()) {
		s.FailingSince, s.LastError = f.since, f.last
	}
	return s
}

// publishResult says what Publish did.
type publishResult struct {
	// done[i] says that the broker confirmed the i-th row, published or
	// dead-lettered: the source may now confirm it.
	done         []bool
	published    int
	deadLettered int
	// err joins the failures; rows not done wait for the next attempt.
	// It wraps sqldb.ErrLeaseLost if a Send was abandoned because the
	// lease lapsed.
	err error
}

// errNotLeading stops Publish before a Send when the relay may not
// publish: it does not lead, or its lease is not certainly held.
var errNotLeading = errors.New("outbox: not leading")

// publish publishes rows, which are in commit order.
func (p *publisher) publish(ctx context.Context, rows []relay.Row) publishResult {
	var (
		order  []string // destinations in order of first appearance
		groups = map[string][]*message.Message{}
		index  = map[string][]int{}
		dead   []*message.Message
		deadAt []int
		res    = publishResult{done: make([]bool, len(rows))}
	)
	for i, rw := range rows {
		m, err := rw.Message(p.limits)
		if err != nil {
			dead = append(dead, p.deadLetterOf(rw, err))
			deadAt = append(deadAt, i)
			continue
		}
		if _, ok := groups[rw.Destination]; !ok {
			order = append(order, rw.Destination)
		}
		groups[rw.Destination] = append(groups[rw.Destination], m)
		index[rw.Destination] = append(index[rw.Destination], i)
	}
	stop := false // the lease does not allow another Send
	for _, dest := range order {
		err := p.send(ctx, p.producer, dest, groups[dest])
		if errors.Is(err, errNotLeading) {
			stop = true
			break
		}
		if err != nil {
			// Later rows of this destination wait for the next attempt,
			// so its order holds; other destinations go on.
			res.err = errors.Join(res.err, fmt.Errorf("publishing %d messages to %q: %w", len(groups[dest]), dest, err))
			if stop = errors.Is(err, sqldb.ErrLeaseLost); stop {
				break
			}
			continue
		}
		for _, i := range index[dest] {
			res.done[i] = true
		}
		res.published += len(index[dest])
		if p.observer != nil {
			committed := make([]time.Time, len(index[dest]))
			for j, i := range index[dest] {
				committed[j] = rows[i].Committed
			}
			p.observer.Published(dest, committed, time.Now())
		}
	}
	if len(dead) > 0 && !stop {
		// Through the broker's way for dead letters, where it has one
		// (RabbitMQ keeps them in a queue even if nothing reads the
		// channel).
		switch err := p.send(ctx, broker.DeadLetters(p.producer), p.deadLetter, dead); {
		case errors.Is(err, errNotLeading):
		case err != nil:
			res.err = errors.Join(res.err, fmt.Errorf("dead-lettering %d rows to %q: %w", len(dead), p.deadLetter, err))
		default:
			for _, i := range deadAt {
				res.done[i] = true
			}
			res.deadLettered = len(dead)
			p.logger.Error("courier: outbox rows dead-lettered", slog.Int("rows", len(dead)),
				slog.String("channel", p.deadLetter), slog.String("first_reason", dead[0].Header(message.HeaderDeadLetterReason)))
		}
	}
	p.published.Add(uint64(res.published))
	p.deadLettered.Add(uint64(res.deadLettered))
	return res
}

// send sends msgs to channel through to under the lease, and keeps count
// of the broker's failures. It returns errNotLeading, without sending, if the
// relay may not publish now, and an error wrapping sqldb.ErrLeaseLost if
// the lease lapsed during the Send.
func (p *publisher) send(ctx context.Context, to broker.Producer, channel string, msgs []*message.Message) error {
	keeper := p.lease()
	if keeper == nil || !keeper.Valid() {
		return errNotLeading
	}
	sctx, cancel := keeper.Bound(ctx)
	defer cancel()
	err := to.Send(sctx, channel, msgs...)
	switch {
	case err == nil:
		p.failure.Store(nil)
	case ctx.Err() != nil:
		// The relay stops: not the broker's failure.
	case sctx.Err() != nil:
		err = fmt.Errorf("send abandoned: %w (%w)", context.Cause(sctx), err)
	default:
		p.errs.Add(1)
		p.sendErrors.Add(1)
		f := &sendFailure{since: time.Now(), last: err, keeper: keeper}
		if old := p.failure.Load(); old != nil && old.keeper == keeper {
			f.since = old.since
		}
		p.failure.Store(f)
	}
	return err
}

// deadLetterOf wraps a row that cannot be published into a message for
// the dead-letter channel, with the reason and the raw headers.
func (p *publisher) deadLetterOf(rw relay.Row, reason error) *message.Message {
	payload := rw.Payload
	if err := p.limits.Check(&message.Message{ID: "-", Payload: payload}); errors.Is(err, message.ErrPayloadTooLarge) {
		payload = nil // it cannot travel; the reason says why
	}
	id := rw.ID
	if id == "" || len(id) > 255 {
		id = message.NewID()
	}
	return &message.Message{ID: id, Payload: payload, Headers: message.Headers{
		message.HeaderDeadLetterReason:       reason.Error(),
		message.HeaderDeadLetterChannel:      truncate(rw.Destination, 255),
		message.HeaderDeadLetterSubscriberID: p.source,
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
