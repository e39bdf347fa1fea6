package natsjs

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/courier-go/courier/internal/backoff"
)

// Tuning of the shard workers.
const (
	// pullBatch is how many messages a pull request asks for; with
	// MaxAckPending 1 the server sends one at a time anyway.
	pullBatch = 16
	// retryWait is the pause before a worker tries again after its pull
	// subscription failed.
	retryWait = 250 * time.Millisecond
	// maxRetryWait bounds the pause between attempts.
	maxRetryWait = 5 * time.Second
	// drainTimeout bounds the wait for a pull subscription to drain.
	drainTimeout = 5 * time.Second
	// pullExpiry is how long a pull request lasts before the client
	// makes a new one; the server sends a heartbeat every half of it, and
	// a pull request the server or the network lost is noticed after two
	// missed heartbeats. nats.go's default, 30s, leaves a shard silent
	// for as long when that happens.
	pullExpiry = 5 * time.Second
)

// worker pulls one shard of a channel for one instance, while the instance
// owns the shard, and runs its messages through the Processor in order.
type worker struct {
	g     *group
	shard int
	cons  jetstream.Consumer
	wake  chan struct{} // ownership may have changed

	progress progress // of the message in flight
}

func (w *worker) notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) log(level slog.Level, msg string, attrs ...slog.Attr) {
	attrs = append(attrs, slog.String("channel", w.g.channel), slog.Int("shard", w.shard))
	w.g.s.log(level, msg, attrs...)
}

// run waits for ownership of the shard and consumes it while it lasts,
// until the subscription stops.
func (w *worker) run() {
	defer w.g.s.workers.Done()
	failures := 0
	for {
		if w.g.s.stopping() {
			return
		}
		if !w.g.owns(w.shard) {
			select {
			case <-w.wake:
			case <-w.g.s.stop:
				return
			}
			continue
		}
		err := w.consume()
		if err == nil {
			if failures > 0 {
				w.log(slog.LevelInfo, "pulling the shard again", slog.Int("failures", failures))
			}
			failures = 0
			continue
		}
		// Pause before trying again, longer after each failure; log the
		// first of a run of failures only, unless the connection is
		// gone for good.
		failures++
		if failures == 1 && !w.g.s.b.nc.IsClosed() {
			w.log(slog.LevelWarn, "pulling the shard failed; will retry", slog.Any("error", err))
		}
		t := time.NewTimer(backoff.Exponential(retryWait, maxRetryWait, failures))
		select {
		case <-t.C:
		case <-w.g.s.stop:
		}
		t.Stop()
	}
}

// consume pulls the shard until the instance stops owning it, or returns
// the error that stopped its pull subscription.
func (w *worker) consume() error {
	s := w.g.s
	// owned ends when the instance stops owning the shard: the Processor
	// then makes no new attempt, and no new message is taken.
	owned, disown := context.WithCancel(context.Background())
	defer disown()
	var watch sync.WaitGroup
	defer watch.Wait()
	defer disown()
	watch.Go(func() {
		for {
			select {
			case <-owned.Done():
				return
			case <-s.stop:
				disown()
				return
			case <-w.wake:
				if !w.g.owns(w.shard) {
					disown()
					return
				}
			}
		}
	})

	it, err := w.cons.Messages(jetstream.PullMaxMessages(pullBatch), jetstream.PullExpiry(pullExpiry))
	if err != nil {
		if owned.Err() != nil {
			return nil
		}
		return err
	}
	var (
		lastSeq   uint64        // last stream sequence handled in this session
		held      jetstream.Msg // handled while ownership ended: settled after the drain
		heldErr   error
		unstarted jetstream.Msg // received as ownership ended: given back after the drain
		failure   error
	)
	for {
		msg, err := it.Next(jetstream.NextContext(owned))
		if err != nil {
			if owned.Err() == nil {
				failure = err
			}
			break
		}
		meta, err := msg.Metadata()
		if err != nil {
			w.log(slog.LevelError, "message without JetStream metadata; acknowledged and skipped", slog.Any("error", err))
			_ = msg.Ack()
			continue
		}
		if meta.Sequence.Stream <= lastSeq {
			// A redelivery of a message already handled, after its
			// ack wait passed: acknowledge it again.
			_ = msg.Ack()
			continue
		}
		if owned.Err() != nil {
			// Ownership ended as the message arrived: give it back
			// unstarted, after the drain.
			unstarted = msg
			break
		}
		perr := w.process(owned, msg, meta)
		if owned.Err() != nil {
			held, heldErr = msg, perr
			break
		}
		w.settle(msg, perr)
		if perr == nil {
			lastSeq = meta.Sequence.Stream
		}
	}

	// Stop pulling, and give back what arrived but was not started.
	// Draining before settling the held message makes sure that the next
	// message of the shard, which JetStream releases only once the held
	// one is acknowledged, goes to the next owner rather than to this
	// instance's dying subscription.
	it.Drain()
	deadline := time.Now().Add(drainTimeout)
	for {
		wait := time.Until(deadline)
		if wait <= 0 {
			it.Stop()
			break
		}
		msg, err := it.Next(jetstream.NextMaxWait(wait))
		if err != nil {
			if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				it.Stop()
			}
			break
		}
		if (held != nil && sameMsg(msg, held)) || (unstarted != nil && sameMsg(msg, unstarted)) {
			continue // a redelivery of a message settled below
		}
		_ = msg.Nak()
	}
	if held != nil {
		w.settle(held, heldErr)
	}
	if unstarted != nil {
		_ = unstarted.Nak()
	}
	return failure
}

// process runs one message through the Processor, reporting progress to
// JetStream meanwhile so that a long handler keeps its message.
func (w *worker) process(owned context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) error {
	s := w.g.s
	w.progress.start(msg, s.b.cfg.ackWait/3)
	defer w.progress.stop()
	prior := int(meta.NumDelivered) - 1
	return s.proc.Process(s.hctx, owned.Done(), w.g.channel, w.shard, max(prior, 0), decode(msg, meta))
}

// settle acknowledges a handled message, or gives it back to JetStream
// for redelivery if the Processor abandoned it.
func (w *worker) settle(msg jetstream.Msg, perr error) {
	if err := settle(msg, perr); err != nil && !w.g.s.b.nc.IsClosed() {
		w.log(slog.LevelWarn, settleFailed, slog.Bool("handled", perr == nil), slog.Any("error", err))
	}
}

// settleFailed is logged when a message cannot be settled.
const settleFailed = "settling a message failed; JetStream will deliver it again after the ack wait"

// settle acknowledges msg if the Processor handled it (perr is nil), and
// gives it back to JetStream for redelivery otherwise.
func settle(msg jetstream.Msg, perr error) error {
	if perr == nil {
		return msg.Ack()
	}
	return msg.Nak()
}

// sameMsg reports whether a and b are deliveries of one stream message.
func sameMsg(a, b jetstream.Msg) bool {
	ma, err1 := a.Metadata()
	mb, err2 := b.Metadata()
	return err1 == nil && err2 == nil && ma.Sequence.Stream == mb.Sequence.Stream
}
