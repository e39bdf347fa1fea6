package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

var _ broker.DeadLetterBrowser = (*Broker)(nil)

// browseBatch is how many messages BrowseDeadLetters fetches at a time.
const browseBatch = 256

// BrowseDeadLetters reads the dead-letter channel's stream, where dead
// letters stay like any message (retention by limits), with an ordered
// consumer of its own from the first message to the last one the stream
// held when the call began: no subscriber id's position moves. Each
// letter's Position is its stream sequence. See broker.DeadLetterBrowser.
func (b *Broker) BrowseDeadLetters(ctx context.Context, channel string, fn func(broker.DeadLetter) error) error {
	if err := message.ValidateChannel(channel); err != nil {
		return fmt.Errorf("natsjs: browse dead letters: %w", err)
	}
	fail := func(err error) error {
		return fmt.Errorf("natsjs: browse dead letters of %q: %w", channel, b.sendErr(err))
	}
	stream, err := b.js.Stream(ctx, streamName(channel))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fail(err)
	}
	state := stream.CachedInfo().State
	if state.Msgs == 0 {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: state.FirstSeq,
	})
	if err != nil {
		return fail(err)
	}
	for {
		wait := 5 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			wait = max(min(wait, time.Until(dl)), time.Millisecond)
		}
		batch, err := cons.Fetch(browseBatch, jetstream.FetchMaxWait(wait))
		if err != nil {
			return fail(err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				return fail(err)
			}
			if meta.Sequence.Stream > state.LastSeq {
				return nil
			}
			if err := fn(broker.DeadLetter{Message: decode(msg, meta), Position: strconv.FormatUint(meta.Sequence.Stream, 10)}); err != nil {
				return err
			}
			if meta.Sequence.Stream == state.LastSeq {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return fail(err)
		}
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if n == 0 {
			// The last message was removed after the call began:
			// nothing more to read.
			return nil
		}
	}
}

// RemoveDeadLetters deletes the letters' messages from the dead-letter
// channel's stream by sequence. See broker.DeadLetterBrowser.
func (b *Broker) RemoveDeadLetters(ctx context.Context, channel string, letters []broker.DeadLetter) (int, error) {
	if err := message.ValidateChannel(channel); err != nil {
		return 0, fmt.Errorf("natsjs: remove dead letters: %w", err)
	}
	seqs := make([]uint64, len(letters))
	for i, l := range letters {
		seq, err := strconv.ParseUint(l.Position, 10, 64)
		if err != nil || seq == 0 {
			return 0, fmt.Errorf("natsjs: remove dead letters of %q: %w: %q is not a stream sequence", channel, broker.ErrInvalidPosition, l.Position)
		}
		seqs[i] = seq
	}
	stream, err := b.js.Stream(ctx, streamName(channel))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("natsjs: remove dead letters of %q: %w", channel, b.sendErr(err))
	}
	removed := 0
	for _, seq := range seqs {
		err := stream.DeleteMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("natsjs: remove dead letters of %q: sequence %d: %w", channel, seq, b.sendErr(err))
		}
		removed++
	}
	return removed, nil
}
