package amqp

import (
	"context"
	"fmt"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/internal/connurl"
	"github.com/courier-go/courier/message"
)

// Broker is a connection to a RabbitMQ server: a broker.Broker. It is safe
// for concurrent use.
type Broker struct {
	cfg       config
	redacted  string // the URL without its password, for messages
	frameSize int    // largest AMQP frame, negotiated at Open

	pubConn *connection
	subConn *connection
	pub     *publisher

	subs adapter.Subscriptions[*subscription]

	// helpers run AMQP calls that cannot be interrupted on behalf of
	// callers whose context may end first; see call.
	helpersMu     sync.Mutex
	helpersClosed bool
	helpers       sync.WaitGroup
}

var _ broker.Broker = (*Broker)(nil)

// Open connects to the RabbitMQ server at rawURL, of the form
// amqp://user:password@host:port/vhost (amqps:// for TLS), and returns a
// Broker. It fails, within ctx, if the server is unreachable or refuses the
// credentials. Reserved characters in the user name or password must be
// percent-encoded.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Broker, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("amqp broker: %w", err)
		}
	}
	redacted := connurl.Redacted(rawURL)
	if _, err := amqp091.ParseURI(rawURL); err != nil {
		return nil, fmt.Errorf("amqp broker: invalid URL %s: %w", redacted, connurl.Redact(err, rawURL))
	}
	b := &Broker{cfg: cfg, redacted: redacted}
	var err error
	if b.pubConn, err = openConnection(ctx, "publisher", rawURL, redacted, &b.cfg); err != nil {
		return nil, fmt.Errorf("amqp broker: connect to %s: %w", redacted, connurl.Redact(err, rawURL))
	}
	if b.subConn, err = openConnection(ctx, "consumer", rawURL, redacted, &b.cfg); err != nil {
		b.pubConn.close()
		return nil, fmt.Errorf("amqp broker: connect to %s: %w", redacted, connurl.Redact(err, rawURL))
	}
	b.frameSize = b.pubConn.frameSize
	b.pub = newPublisher(b, b.pubConn)
	return b, nil
}

// RemoveChannel deletes the channel's exchange. The shard queues of the
// subscriber ids that read it lose their bindings but stay, with their
// messages, until deleted or expired (WithQueueExpiry); an ephemeral
// subscription's queue is deleted when it closes. See
// broker.ChannelRemover.
func (b *Broker) RemoveChannel(ctx context.Context, channel string) error {
	if err := message.ValidateChannel(channel); err != nil {
		return fmt.Errorf("amqp broker: remove channel %q: %w", channel, err)
	}
	if b.subs.Closing() {
		return fmt.Errorf("amqp broker: remove channel %q: %w", channel, broker.ErrClosed)
	}
	if err := b.pub.removeExchange(ctx, channel); err != nil {
		return fmt.Errorf("amqp broker: remove channel %q: %w", channel, err)
	}
	return nil
}

// Ping opens and closes an AMQP channel on each of the Broker's two
// connections: a round trip to RabbitMQ that fails, within ctx, while a
// connection is down. See broker.Pinger.
func (b *Broker) Ping(ctx context.Context) error {
	if b.subs.Closing() {
		return fmt.Errorf("amqp broker: ping: %w", broker.ErrClosed)
	}
	for _, c := range []*connection{b.pubConn, b.subConn} {
		sess, err := c.get(ctx, nil)
		if err != nil {
			return fmt.Errorf("amqp broker: ping: %w", err)
		}
		ch, err := b.openChannel(ctx, sess, func(*amqp091.Channel) error { return nil })
		if err != nil {
			return fmt.Errorf("amqp broker: ping: %w", err)
		}
		_ = ch.Close()
	}
	return nil
}

// RemoveSubscriber deletes the shard queues of subscriberID on each
// channel, with the messages waiting in them, and its presence queue. See
// broker.SubscriberRemover. It deletes as many shard queues as the Broker
// declares (WithShards): a subscriber id declared with more needs a
// Broker with as many.
func (b *Broker) RemoveSubscriber(ctx context.Context, subscriberID string, channels []string) error {
	if err := message.ValidateChannel(subscriberID); err != nil {
		return fmt.Errorf("amqp broker: remove subscriber %q: %w", subscriberID, err)
	}
	for _, channel := range channels {
		if err := message.ValidateChannel(channel); err != nil {
			return fmt.Errorf("amqp broker: remove subscriber %q: %w", subscriberID, err)
		}
	}
	if b.subs.Closing() {
		return fmt.Errorf("amqp broker: remove subscriber %q: %w", subscriberID, broker.ErrClosed)
	}
	sess, err := b.pubConn.get(ctx, nil)
	if err != nil {
		return fmt.Errorf("amqp broker: remove subscriber %q: wait for the connection: %w", subscriberID, err)
	}
	ch, err := b.openChannel(ctx, sess, func(ch *amqp091.Channel) error {
		for _, channel := range channels {
			if b.cfg.eventuate {
				if err := b.removeEventuateSubscriber(ch, subscriberID, channel); err != nil {
					return err
				}
				continue
			}
			group := groupName(channel, subscriberID)
			queues := []string{presenceQueueName(group), poolQueueName(group)}
			for i := range b.cfg.shards {
				queues = append(queues, shardQueueName(group, i))
			}
			for _, q := range queues {
				if _, err := ch.QueueDelete(q, false, false, false); err != nil {
					return fmt.Errorf("delete queue %q: %w", q, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("amqp broker: remove subscriber %q: %w", subscriberID, err)
	}
	_ = ch.Close()
	return nil
}

// Send publishes msgs, in order, to the channel and returns once RabbitMQ
// has confirmed that it stored every one of them. While the connection is
// down it waits for it to come back, as long as ctx allows.
func (b *Broker) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	out, err := b.prepare(ctx, channel, msgs, b.cfg.eventuate)
	if err != nil || len(out) == 0 {
		return err
	}
	if err := b.pub.publish(ctx, channel, out); err != nil {
		return fmt.Errorf("amqp broker: send to %q: %w", channel, err)
	}
	return nil
}

// prepare validates a Send's arguments and encodes its messages, in
// Eventuate's format or in Courier's.
func (b *Broker) prepare(ctx context.Context, channel string, msgs []*message.Message, eventuate bool) ([]outgoing, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("amqp broker: send to %q: %w", channel, err)
	}
	if b.subs.Closing() {
		return nil, fmt.Errorf("amqp broker: send to %q: %w", channel, broker.ErrClosed)
	}
	if err := adapter.PrepareSend(channel, msgs, b.cfg.limits); err != nil {
		return nil, fmt.Errorf("amqp broker: %w", err)
	}
	now := time.Now()
	date := message.FormatDate(now)
	out := make([]outgoing, len(msgs))
	for i, m := range msgs {
		var err error
		if eventuate {
			out[i], err = encodeEventuate(channel, m, date)
		} else {
			out[i], err = encode(channel, m, date, now, b.frameSize)
		}
		if err != nil {
			return nil, fmt.Errorf("amqp broker: send to %q: %w", channel, err)
		}
	}
	return out, nil
}

// DeadLetterProducer returns the Producer that subscriptions send their
// dead letters through, and that the outbox relay uses for the rows it
// dead-letters (see broker.DeadLetters). RabbitMQ drops a message that no
// queue is bound for, and a dead-letter channel is often read by no
// subscriber id, so its Send first declares the channel's kept queue,
// "<channel>:kept", a durable queue bound to every routing key that no
// Courier subscription reads, where dead letters stay until an operator
// takes them; and it publishes with the mandatory flag, so that a dead
// letter no queue takes (the kept queue was deleted) fails the Send with
// ErrUnroutable and is sent again, after the queue is declared again,
// rather than discarded.
func (b *Broker) DeadLetterProducer() broker.Producer { return deadLetterProducer{b} }

type deadLetterProducer struct{ b *Broker }

func (d deadLetterProducer) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	out, err := d.b.prepare(ctx, channel, msgs, false)
	if err != nil || len(out) == 0 {
		return err
	}
	if err := d.b.pub.publishDeadLetters(ctx, channel, out); err != nil {
		return fmt.Errorf("amqp broker: send dead letters to %q: %w", channel, err)
	}
	return nil
}

// Subscribe starts an instance of subscriberID on channels. It declares the
// subscriber id's exchanges and shard queues (see the package
// documentation) and starts consuming them before it returns, so every
// message sent after it returns reaches the subscriber id.
func (b *Broker) Subscribe(ctx context.Context, subscriberID string, channels []string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("amqp broker: subscribe %q: %w", subscriberID, err)
	}
	cfg, err := adapter.NewSubscribeConfig(subscriberID, channels, h, opts...)
	if err == nil {
		err = b.checkEventuate(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("amqp broker: %w", err)
	}
	s := newSubscription(ctx, b, cfg)
	if err := b.subs.Add(s, nil); err != nil {
		return nil, fmt.Errorf("amqp broker: subscribe %q: %w", subscriberID, err)
	}
	if err := s.start(ctx); err != nil {
		_ = s.Close(context.Background())
		return nil, fmt.Errorf("amqp broker: subscribe %q to %v: %w", subscriberID, cfg.Channels, err)
	}
	return s, nil
}

// Close closes every subscription made through b, waiting for their
// in-flight handlers as Subscription.Close does, then the connections.
// Later calls of Send and Subscribe fail with broker.ErrClosed.
func (b *Broker) Close(ctx context.Context) error {
	first, err := b.subs.Close(ctx)
	if !first {
		return nil
	}
	b.pubConn.close()
	b.subConn.close()
	b.helpersMu.Lock()
	b.helpersClosed = true
	b.helpersMu.Unlock()
	b.helpers.Wait()
	return err
}

// call runs fn, a blocking AMQP call that knows no context, and returns its
// error, or ctx's as soon as ctx ends. On failure cleanup (which closes the
// channel fn used) runs once fn has returned: right away when fn failed,
// later, from the goroutine running fn, when the caller gave up waiting;
// the caller must then not use that channel again. The goroutine belongs to
// the Broker, whose Close waits for it after closing the connections, which
// makes every pending call return.
func (b *Broker) call(ctx context.Context, fn func() error, cleanup func()) error {
	if cleanup == nil {
		cleanup = func() {}
	}
	if err := ctx.Err(); err != nil {
		cleanup()
		return err
	}
	b.helpersMu.Lock()
	if b.helpersClosed {
		b.helpersMu.Unlock()
		cleanup()
		return broker.ErrClosed
	}
	b.helpers.Add(1)
	b.helpersMu.Unlock()

	var (
		mu        sync.Mutex
		finished  bool
		abandoned bool
		result    error
	)
	done := make(chan struct{})
	go func() {
		defer b.helpers.Done()
		err := fn()
		mu.Lock()
		finished, result = true, err
		gaveUp := abandoned
		mu.Unlock()
		if gaveUp {
			cleanup()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		mu.Lock()
		if !finished {
			abandoned = true
			mu.Unlock()
			return ctx.Err()
		}
		mu.Unlock()
	}
	mu.Lock()
	err := result
	mu.Unlock()
	if err != nil {
		cleanup()
	}
	return err
}
