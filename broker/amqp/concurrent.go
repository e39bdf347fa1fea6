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
	sess, err := s.b.subConn.get(s.stopCtx, s.stop)
	if err != nil {
		return fmt.Errorf("wait for the connection: %w", err)
	}
	var (
		closes     chan *amqp091.Error
		deliveries <-chan amqp091.Delivery
	)
	tag := consumerTag(s.id, s.consumers.Add(1))
	ch, err := s.b.openChannel(s.stopCtx, sess, func(ch *amqp091.Channel) error {
		closes = ch.NotifyClose(make(chan *amqp091.Error, 1))
		if redeclare {
			if err := s.b.cfg.declare(sess.conn, ch, p.g, nil); err != nil {
				return err
			}
		}
		if err := ch.Qos(s.cfg.MaxInFlight, 0, false); err != nil {
			return fmt.Errorf("set the prefetch: %w", err)
		}
		var err error
		if deliveries, err = ch.Consume(p.queue, tag, false, false, false, false, nil); err != nil {
			return fmt.Errorf("consume queue %q: %w", p.queue, err)
		}
		return nil
	})
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
