package adapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// maxReasonBytes bounds the dead-letter reason header, so that a long error
// text cannot push the message past the header limit.
const maxReasonBytes = 1024

// ErrAbandoned is returned by Processor.Process when the subscription
// stopped before the message was handled or dead-lettered: the message
// must not be acknowledged, so that it is delivered again.
var ErrAbandoned = errors.New("broker: delivery abandoned")

// Processor runs a subscription's handler for one message at a time with
// the subscription's policy: retries with backoff, panic recovery, a
// per-call timeout and dead-lettering. Adapters call Process for the
// messages of a shard in order and acknowledge a message when Process
// returns nil. A Processor is safe for concurrent use by several shards.
type Processor struct {
	cfg        broker.SubscribeConfig
	deadLetter broker.Producer
	// handled is cfg.Observer if it is told of each handler call; nil
	// otherwise, so that a Processor without one reads no clock.
	handled broker.HandlerObserver
}

// NewProcessor returns a Processor for cfg that sends given-up messages to
// cfg.DeadLetterChannel through deadLetter.
func NewProcessor(cfg broker.SubscribeConfig, deadLetter broker.Producer) *Processor {
	p := &Processor{cfg: cfg, deadLetter: deadLetter}
	p.handled, _ = cfg.Observer.(broker.HandlerObserver)
	return p
}

// Config returns the subscription's configuration.
func (p *Processor) Config() broker.SubscribeConfig { return p.cfg }

// Process hands msg, consumed from channel, to the handler until it
// succeeds, then returns nil; after the last attempt, or a permanent error,
// it sends msg to the dead-letter channel and returns nil. msg itself is
// never modified: each attempt gets its own copy of the headers.
//
// ctx is the handlers' context. When stop is closed Process makes no new
// attempt and returns ErrAbandoned: the message must then be left
// unacknowledged, for redelivery. priorAttempts counts deliveries of msg
// before this one that the broker knows of (0 if it does not track them).
func (p *Processor) Process(ctx context.Context, stop <-chan struct{}, channel string, shard int, priorAttempts int, msg *message.Message) error {
	info := broker.DeliveryInfo{SubscriberID: p.cfg.SubscriberID, Channel: channel, Shard: shard, Attempt: priorAttempts}
	if p.cfg.Tracer == nil {
		_, err := p.process(ctx, stop, info, msg)
		return err
	}
	tctx, end := p.cfg.Tracer.StartDelivery(ctx, info, msg)
	out, err := p.process(tctx, stop, info, msg)
	end(out)
	return err
}

// process is Process once the delivery is traced: ctx is the handlers'
// context.
func (p *Processor) process(ctx context.Context, stop <-chan struct{}, start broker.DeliveryInfo, msg *message.Message) (broker.DeliveryOutcome, error) {
	dctx, info := broker.ContextWithDelivery(ctx, start)
	channel := start.Channel
	var (
		err      error
		failures = start.Attempt // toward MaxAttempts
		outage   time.Time       // first of the current run of Unavailable failures
		outages  int             // failures in that run
	)
	for {
		info.Attempt++
		var began time.Time
		if p.handled != nil {
			began = time.Now()
		}
		if err = p.call(dctx, msg); err == nil {
			if p.handled != nil {
				p.handled.Handled(ctx, *info, msg.ID, time.Since(began), nil, false)
			}
			return broker.DeliveryOutcome{Attempts: info.Attempt, Result: broker.ResultHandled}, nil
		}
		var wait time.Duration
		if p.unavailable(err, &outage) {
			// The handler's dependency is down, not the message at
			// fault: wait for it without spending an attempt.
			outages++
			wait = p.cfg.Backoff(outages)
			p.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "courier: a dependency of the handler is unavailable; will retry",
				slog.String("subscriber", p.cfg.SubscriberID), slog.String("channel", channel),
				slog.String("message_id", msg.ID), slog.Duration("unavailable_for", time.Since(outage)),
				slog.Duration("backoff", wait), slog.Any("error", err))
		} else {
			outages = 0
			failures++
			if broker.IsPermanent(err) || failures >= p.cfg.MaxAttempts {
				if p.handled != nil {
					p.handled.Handled(ctx, *info, msg.ID, time.Since(began), err, false)
				}
				break
			}
			wait = p.cfg.Backoff(failures)
			p.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "courier: handler failed; will retry",
				slog.String("subscriber", p.cfg.SubscriberID), slog.String("channel", channel),
				slog.String("message_id", msg.ID), slog.Int("attempt", info.Attempt),
				slog.Duration("backoff", wait), slog.Any("error", err))
		}
		if p.handled != nil {
			p.handled.Handled(ctx, *info, msg.ID, time.Since(began), err, true)
		}
		if !sleep(ctx, stop, wait) {
			return broker.DeliveryOutcome{Attempts: info.Attempt, Err: err, Result: broker.ResultAbandoned}, ErrAbandoned
		}
	}
	result, derr := p.sendToDeadLetter(ctx, stop, *info, msg, err)
	return broker.DeliveryOutcome{Attempts: info.Attempt, Err: err, Result: result}, derr
}

// unavailable reports whether err is a failure of an unavailable
// dependency that is retried without counting as an attempt: marked
// Unavailable, not Permanent, within MaxUnavailable of the first of its
// run (*since, set here; reset by any other error).
func (p *Processor) unavailable(err error, since *time.Time) bool {
	if !broker.IsUnavailable(err) || broker.IsPermanent(err) {
		*since = time.Time{}
		return false
	}
	if since.IsZero() {
		*since = time.Now()
	}
	return time.Since(*since) < p.cfg.MaxUnavailable
}

// call runs the handler once on a copy of msg, turning a panic into an
// error.
func (p *Processor) call(ctx context.Context, msg *message.Message) (err error) {
	if p.cfg.HandlerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.HandlerTimeout)
		defer cancel()
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v\n%s", broker.ErrHandlerPanic, r, debug.Stack())
		}
	}()
	delivered := &message.Message{ID: msg.ID, Headers: msg.Headers.Clone(), Payload: msg.Payload}
	return p.cfg.Handler.HandleMessage(ctx, delivered)
}

// sleep waits for d and reports true, or reports false as soon as stop is
// closed or ctx is done.
func sleep(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	select {
	case <-stop:
		return false
	case <-ctx.Done():
		return false
	default:
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	case <-ctx.Done():
		return false
	}
}
