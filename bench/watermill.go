package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill"
	wmessage "github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// WatermillGoChannel runs the workload on Watermill's GoChannel.
//
// GoChannel has no consumer groups: every Subscribe call receives every
// message. The equivalent of "several instances of one subscriber id" is
// therefore one subscription whose output channel is drained by several
// goroutines, each acknowledging what it takes, so that the messages are
// split among them as competing consumers split them. This is also how
// Watermill's own GoChannel benchmark consumes (one subscription, every
// message acked), except that it reads from one goroutine.
type WatermillGoChannel struct {
	// Config is passed to gochannel.NewGoChannel; the zero value is
	// Watermill's default (unbuffered output channel, Publish not
	// waiting for acks, no persistence).
	Config gochannel.Config
	// Label names the variant; empty means "watermill-gochannel".
	Label string
}

// Name implements System.
func (w WatermillGoChannel) Name() string {
	if w.Label != "" {
		return w.Label
	}
	return "watermill-gochannel"
}

// Start implements System.
func (w WatermillGoChannel) Start(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
	ps := gochannel.NewGoChannel(w.Config, watermill.NopLogger{})
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	msgs, err := ps.Subscribe(sctx, benchChannel)
	if err != nil {
		cancel()
		_ = ps.Close()
		return nil, err
	}
	s := &watermillSession{ps: ps, cancel: cancel}
	for range consumers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for m := range msgs {
				deliver(m.Payload)
				if !m.Ack() {
					s.ackFailures.Add(1)
				}
			}
		}()
	}
	return s, nil
}

type watermillSession struct {
	ps          *gochannel.GoChannel
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	ackFailures atomic.Int64
}

// Publish sends one message built the way Watermill's documentation builds
// them: a new UUID, the payload and the key in the metadata (GoChannel does
// not use it).
func (s *watermillSession) Publish(_ context.Context, key string, payload []byte) error {
	m := wmessage.NewMessage(watermill.NewUUID(), payload)
	m.Metadata.Set("partition_key", key)
	return s.ps.Publish(benchChannel, m)
}

// Close ends the subscription, waits for the consumers and closes the
// GoChannel.
func (s *watermillSession) Close(ctx context.Context) error {
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	err := s.ps.Close()
	if n := s.ackFailures.Load(); n > 0 {
		err = errors.Join(err, fmt.Errorf("watermill: %d acks refused", n))
	}
	return err
}
