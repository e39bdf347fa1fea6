package amqp

import (
	"fmt"
	"log/slog"
	"sync"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// pool consumes a group's one queue in concurrent delivery mode
// (broker.WithConcurrentDelivery), as a plain AMQP application consumes a
// work queue: the queue has no single active consumer, every instance of
// the subscriber id consumes it with a prefetch of MaxInFlight, and
// MaxInFlight workers per instance handle its deliveries as they come and
// acknowledge each one. A message not acknowledged when the AMQP channel
// closes goes back to the queue, to any instance.
type pool struct {
	s     *subscription
	g     *group
	queue string
}

func (p *pool) logger() *slog.Logger {
	return p.s.log.With(slog.String("channel", p.g.channel), slog.String("delivery", "concurrent"))
}
func (p *pool) group() *group     { return p.g }
func (p *pool) queueName() string { return p.queue }

// consume opens a channel, consumes the queue on it and runs the workers
// until the subscription stops or the channel fails. It closes the
// channel once the workers returned, which returns the messages they did
// not acknowledge to the queue.
func (p *pool) consume(redeclare bool, started *chan<- error) error {
	s := p.s
	var declare func(*amqp091.Connection, *amqp091.Channel) error
	if redeclare {
		declare = func(conn *amqp091.Connection, ch *amqp091.Channel) error {
			return s.b.cfg.declare(conn, ch, p.g, nil)
		}
	}
	ch, deliveries, closes, err := s.openConsumer(p.queue, declare, s.cfg.MaxInFlight, false)
	if err != nil {
		return err
	}
	// Never basic.cancel: see the package documentation.
	defer ch.Close()
	if *started != nil {
		*started <- nil
		*started = nil
	}

	var (
		wg      sync.WaitGroup
		failMu  sync.Mutex
		failure error
	)
	fail := func(err error) {
		failMu.Lock()
		defer failMu.Unlock()
		if failure == nil {
			failure = err
		}
	}
	for range s.cfg.MaxInFlight {
		wg.Go(func() {
			for {
				var (
					d  amqp091.Delivery
					ok bool
				)
				select {
				case <-s.stop:
					return
				case d, ok = <-deliveries:
				}
				if !ok {
					fail(fmt.Errorf("consumer of queue %q ended: %w", p.queue, closeReason(closes)))
					return
				}
				select {
				case s.slots <- struct{}{}:
				case <-s.stop:
					return // unacknowledged: back to the queue when the channel closes
				}
				perr := s.proc.Process(s.ctx, s.stop, p.g.channel, -1, 0, decode(&d))
				<-s.slots
				if perr != nil {
					return // abandoned because the subscription is closing
				}
				if err := ch.Ack(d.DeliveryTag, false); err != nil {
					fail(fmt.Errorf("acknowledge a message from queue %q: %w", p.queue, err))
					return
				}
			}
		})
	}
	wg.Wait()
	if s.stopping() {
		return nil
	}
	return failure
}
