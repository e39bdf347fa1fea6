package memory

import (
	"context"
	"fmt"
	"strconv"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// keptLetter is a dead letter the Broker keeps, numbered in the order
// they were sent.
type keptLetter struct {
	seq uint64
	msg *message.Message
}

var _ broker.DeadLetterBrowser = (*Broker)(nil)

// DeadLetterProducer returns the Producer that subscriptions send their
// dead letters through (see broker.DeadLetterProducer): each dead letter
// goes to the channel's subscriber ids, as Send sends it, and is also kept
// by the Broker, whatever reads the channel, until RemoveDeadLetters
// removes it, so that BrowseDeadLetters finds it. Like every message here,
// kept dead letters last as long as the Broker.
func (b *Broker) DeadLetterProducer() broker.Producer {
	return broker.ProducerFunc(func(ctx context.Context, channel string, msgs ...*message.Message) error {
		if err := b.Send(ctx, channel, msgs...); err != nil {
			return err
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, m := range msgs {
			b.keptSeq++
			stored := &message.Message{ID: m.ID, Headers: m.Headers.Clone(), Payload: append([]byte(nil), m.Payload...)}
			b.kept[channel] = append(b.kept[channel], keptLetter{seq: b.keptSeq, msg: stored})
		}
		return nil
	})
}

// BrowseDeadLetters calls fn with each dead letter the Broker keeps for
// channel, in the order they were sent. fn gets a copy of each. See
// broker.DeadLetterBrowser.
func (b *Broker) BrowseDeadLetters(ctx context.Context, channel string, fn func(broker.DeadLetter) error) error {
	if err := message.ValidateChannel(channel); err != nil {
		return fmt.Errorf("memory broker: browse dead letters: %w", err)
	}
	b.mu.RLock()
	letters := append([]keptLetter(nil), b.kept[channel]...)
	b.mu.RUnlock()
	for _, l := range letters {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("memory broker: browse dead letters of %q: %w", channel, err)
		}
		m := &message.Message{ID: l.msg.ID, Headers: l.msg.Headers.Clone(), Payload: append([]byte(nil), l.msg.Payload...)}
		if err := fn(broker.DeadLetter{Message: m, Position: strconv.FormatUint(l.seq, 10)}); err != nil {
			return err
		}
	}
	return nil
}

// RemoveDeadLetters removes the given letters from those the Broker keeps
// for channel. See broker.DeadLetterBrowser.
func (b *Broker) RemoveDeadLetters(ctx context.Context, channel string, letters []broker.DeadLetter) (int, error) {
	if err := message.ValidateChannel(channel); err != nil {
		return 0, fmt.Errorf("memory broker: remove dead letters: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("memory broker: remove dead letters of %q: %w", channel, err)
	}
	remove := make(map[uint64]bool, len(letters))
	for _, l := range letters {
		seq, err := strconv.ParseUint(l.Position, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("memory broker: remove dead letters of %q: %w: position %q is not one of this broker's", channel, broker.ErrInvalidPosition, l.Position)
		}
		remove[seq] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := b.kept[channel]
	left := kept[:0]
	for _, l := range kept {
		if !remove[l.seq] {
			left = append(left, l)
		}
	}
	removed := len(kept) - len(left)
	clear(kept[len(left):])
	if len(left) == 0 {
		delete(b.kept, channel)
	} else {
		b.kept[channel] = left
	}
	return removed, nil
}
