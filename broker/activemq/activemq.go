package activemq

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/activemq/internal/stomp"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/internal/backoff"
	"github.com/courier-go/courier/internal/connurl"
	"github.com/courier-go/courier/message"
)

// DefaultPort is ActiveMQ's STOMP port.
const DefaultPort = "61613"

// Broker is a connection to an ActiveMQ server: a broker.Broker. It is
// safe for concurrent use.
type Broker struct {
	cfg      config
	addr     string
	stompCfg stomp.Config
	redacted string

	pub  *link
	subs adapter.Subscriptions[*subscription]

	keptMu sync.Mutex
	kept   map[string]bool // dead-letter channels whose kept queue exists
}

var _ broker.Broker = (*Broker)(nil)

// Open connects to the ActiveMQ server at rawURL, of the form
// activemq://[user:password@]host[:port] (port 61613, STOMP, by default),
// and returns a Broker. The TLS parameters of connection URLs (tls,
// cacertfile, certfile, keyfile, server_name_indication) dial the STOMP
// port with TLS. It fails, within ctx, if the server is unreachable or
// refuses the credentials.
func Open(ctx context.Context, rawURL string, opts ...Option) (*Broker, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("activemq broker: %w", err)
		}
	}
	redacted := connurl.Redacted(rawURL)
	addr, sc, err := parseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("activemq broker: invalid URL %s: %w", redacted, connurl.Redact(err, rawURL))
	}
	sc.HeartBeat = cfg.heartBeat
	b := &Broker{cfg: cfg, addr: addr, stompCfg: sc, redacted: redacted, kept: make(map[string]bool)}
	b.pub = &link{b: b, name: "publisher"}
	if _, err := b.pub.dial(ctx); err != nil {
		return nil, fmt.Errorf("activemq broker: connect to %s: %w", redacted, connurl.Redact(err, rawURL))
	}
	return b, nil
}

func parseURL(rawURL string) (string, stomp.Config, error) {
	var sc stomp.Config
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", sc, err
	}
	if u.Scheme != "activemq" {
		return "", sc, fmt.Errorf("scheme %q: want activemq://", u.Scheme)
	}
	if u.Hostname() == "" {
		return "", sc, errors.New("no host")
	}
	if u.Path != "" && u.Path != "/" {
		return "", sc, fmt.Errorf("path %q: ActiveMQ URLs name no path", u.Path)
	}
	q, err := connurl.Query(u, connurl.TLSParams...)
	if err != nil {
		return "", sc, err
	}
	var tc *tls.Config
	if tc, err = connurl.TLS(q); err != nil {
		return "", sc, err
	}
	sc.TLS = tc
	if u.User != nil {
		sc.Login = u.User.Username()
		sc.Passcode, _ = u.User.Password()
	}
	sc.Host = u.Hostname()
	port := u.Port()
	if port == "" {
		port = DefaultPort
	}
	return net.JoinHostPort(u.Hostname(), port), sc, nil
}

// link is a STOMP connection made again when it is lost.
type link struct {
	b    *Broker
	name string
	mu   sync.Mutex
	c    *stomp.Conn
}

// dial connects once.
func (l *link) dial(ctx context.Context) (*stomp.Conn, error) {
	c, err := stomp.Dial(ctx, l.b.addr, l.b.stompCfg)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	old := l.c
	l.c = c
	l.mu.Unlock()
	if old != nil {
		go old.Close(context.Background())
	}
	return c, nil
}

// get returns the connection, connecting again with backoff while it is
// down, as long as ctx allows.
func (l *link) get(ctx context.Context) (*stomp.Conn, error) {
	for failures := 0; ; failures++ {
		if l.b.subs.Closing() {
			return nil, broker.ErrClosed
		}
		l.mu.Lock()
		c := l.c
		l.mu.Unlock()
		if c != nil && c.Err() == nil {
			return c, nil
		}
		c, err := l.dial(ctx)
		if err == nil {
			if failures > 0 {
				l.b.cfg.logger.Info("courier: ActiveMQ connection re-established", "connection", l.name, "server", l.b.redacted)
			}
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (last attempt: %v)", ctx.Err(), connurl.NewRedactor(l.b.redacted).Error(err))
		}
		if failures == 0 {
			l.b.cfg.logger.Warn("courier: ActiveMQ connection lost; reconnecting", "connection", l.name, "server", l.b.redacted, "error", err)
		}
		if !backoff.Sleep(ctx, backoff.Jitter(backoff.Exponential(l.b.cfg.reconnectMin, l.b.cfg.reconnectMax, failures+1))) {
			return nil, ctx.Err()
		}
	}
}

func (l *link) close(ctx context.Context) error {
	l.mu.Lock()
	c := l.c
	l.c = nil
	l.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close(ctx)
}

// Send publishes msgs, in order, to the channel, persistent, and returns
// once ActiveMQ confirmed (with a STOMP receipt, after storing them) every
// one of them. While the connection is down it waits for it to come back,
// as long as ctx allows, and sends again the messages not yet confirmed.
func (b *Broker) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("activemq broker: send to %q: %w", channel, err)
	}
	if b.subs.Closing() {
		return fmt.Errorf("activemq broker: send to %q: %w", channel, broker.ErrClosed)
	}
	if err := adapter.PrepareSend(channel, msgs, b.cfg.limits); err != nil {
		return fmt.Errorf("activemq broker: %w", err)
	}
	date := message.FormatDate(time.Now())
	frames := make([]*stomp.Frame, len(msgs))
	for i, m := range msgs {
		f, err := encode(channel, m, date, b.cfg.shards)
		if err != nil {
			return fmt.Errorf("activemq broker: send to %q: %w", channel, err)
		}
		frames[i] = f
	}
	if err := b.publish(ctx, frames); err != nil {
		return fmt.Errorf("activemq broker: send to %q: %w", channel, err)
	}
	return nil
}

// publish sends frames and waits for their receipts, sending those not
// confirmed again on a new connection if the connection fails.
func (b *Broker) publish(ctx context.Context, frames []*stomp.Frame) error {
	for len(frames) > 0 {
		c, err := b.pub.get(ctx)
		if err != nil {
			return err
		}
		receipts, err := c.WithReceipt(frames...)
		if err != nil {
			if errors.Is(err, stomp.ErrClosed) {
				continue
			}
			return err
		}
		var retry []*stomp.Frame
		for i, r := range receipts {
			err := r.Wait(ctx)
			switch {
			case err == nil:
			case errors.Is(err, stomp.ErrClosed):
				retry = append(retry, frames[i])
			default:
				var serr *stomp.ServerError
				if errors.As(err, &serr) {
					return fmt.Errorf("ActiveMQ refused message %s: %w", frames[i].Value(message.HeaderID), err)
				}
				return err
			}
		}
		frames = retry
	}
	return nil
}

// DeadLetterProducer returns the Producer that subscriptions send their
// dead letters through, and that the outbox relay uses for the rows it
// dead-letters (see broker.DeadLetters). A virtual topic copies a message
// only into the queues of subscriber ids that exist, and a dead-letter
// channel is often read by none, so its Send first creates the channel's
// kept queue, the consumer queue of the subscriber id "courier-kept",
// where dead letters stay until an operator takes them.
func (b *Broker) DeadLetterProducer() broker.Producer {
	return broker.ProducerFunc(func(ctx context.Context, channel string, msgs ...*message.Message) error {
		if err := message.ValidateChannel(channel); err == nil {
			if err := b.keep(ctx, channel); err != nil {
				return fmt.Errorf("activemq broker: dead letters to %q: %w", channel, err)
			}
		}
		return b.Send(ctx, channel, msgs...)
	})
}

// KeptSubscriberID is the subscriber id whose queue keeps a dead-letter
// channel's messages; see Broker.DeadLetterProducer.
const KeptSubscriberID = "courier-kept"

// keep creates the kept queue of channel once per Broker: a subscription
// that ActiveMQ confirmed and that is ended at once leaves its queue.
func (b *Broker) keep(ctx context.Context, channel string) error {
	b.keptMu.Lock()
	done := b.kept[channel]
	b.keptMu.Unlock()
	if done {
		return nil
	}
	c, err := b.pub.get(ctx)
	if err != nil {
		return err
	}
	id := "kept-" + channel
	dest := "/queue/" + queueName(channel, KeptSubscriberID)
	if err := c.Subscribe(ctx, id, dest, []stomp.Header{{Name: "ack", Value: "client-individual"}, {Name: "activemq.prefetchSize", Value: "0"}}, func(*stomp.Frame) {}); err != nil {
		return err
	}
	if err := c.Unsubscribe(ctx, id); err != nil {
		return err
	}
	b.keptMu.Lock()
	b.kept[channel] = true
	b.keptMu.Unlock()
	return nil
}

// Ping makes a round trip to ActiveMQ on the publishing connection (a
// message to a topic nobody reads, with a receipt) and fails, within ctx, while it is down. See
// broker.Pinger.
func (b *Broker) Ping(ctx context.Context) error {
	if b.subs.Closing() {
		return fmt.Errorf("activemq broker: ping: %w", broker.ErrClosed)
	}
	b.pub.mu.Lock()
	c := b.pub.c
	b.pub.mu.Unlock()
	if c == nil || c.Err() != nil {
		var err error
		if c, err = b.pub.dial(ctx); err != nil {
			return fmt.Errorf("activemq broker: ping: %w", connurl.NewRedactor(b.redacted).Error(err))
		}
	}
	// A message to a topic nobody reads: ActiveMQ drops it after the
	// receipt.
	ping := &stomp.Frame{Command: "SEND", Headers: []stomp.Header{{Name: "destination", Value: "/topic/courier.ping"}, {Name: "persistent", Value: "false"}}}
	if err := c.Request(ctx, ping); err != nil {
		return fmt.Errorf("activemq broker: ping: %w", err)
	}
	return nil
}

// Subscribe starts an instance of subscriberID on channels. See
// broker.Consumer and the package documentation.
func (b *Broker) Subscribe(ctx context.Context, subscriberID string, channels []string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	cfg, err := adapter.NewSubscribeConfig(subscriberID, channels, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("activemq broker: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("activemq broker: subscribe %q: %w", subscriberID, err)
	}
	s := newSubscription(b, cfg)
	if err := b.subs.Add(s, nil); err != nil {
		return nil, fmt.Errorf("activemq broker: subscribe %q: %w", subscriberID, err)
	}
	if err := s.start(ctx); err != nil {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Close(closeCtx)
		return nil, fmt.Errorf("activemq broker: subscribe %q: %w", subscriberID, err)
	}
	return s, nil
}

// Close closes every subscription made through the Broker, as
// Subscription.Close does, and its publishing connection.
func (b *Broker) Close(ctx context.Context) error {
	first, err := b.subs.Close(ctx)
	if !first {
		return nil
	}
	if cerr := b.pub.close(ctx); cerr != nil && !errors.Is(cerr, stomp.ErrClosed) {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("activemq broker: close: %w", err)
	}
	return nil
}
