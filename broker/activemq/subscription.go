package activemq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/activemq/internal/stomp"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/internal/backoff"
)

// subscription is one instance of a subscriber id: a STOMP connection of
// its own, made again when it is lost or when the instance hands its
// message groups over, with a consumer of the subscriber id's queue on
// each channel.
type subscription struct {
	b    *Broker
	cfg  broker.SubscribeConfig
	proc *adapter.Processor
	log  *slog.Logger
	id   string // this instance, in presence announcements

	ctx      context.Context // the handlers' context
	cancel   context.CancelFunc
	stop     chan struct{} // closed when Close begins
	stopOnce sync.Once
	stopCtx  context.Context // ends with stop
	stopped  context.CancelFunc
	started  chan error
	done     chan struct{} // closed when run returned

	mu    sync.Mutex
	peers []map[string]peer // per channel: other instances by id
}

// peer is what another instance of the subscriber id last announced.
type peer struct {
	owned int
	seen  time.Time
}

func newSubscription(b *Broker, cfg broker.SubscribeConfig) *subscription {
	var id [6]byte
	_, _ = rand.Read(id[:])
	s := &subscription{
		b:       b,
		cfg:     cfg,
		proc:    adapter.NewProcessor(cfg, b.DeadLetterProducer()),
		log:     cfg.Logger.With(slog.String("subscriber", cfg.SubscriberID)),
		id:      hex.EncodeToString(id[:]),
		stop:    make(chan struct{}),
		started: make(chan error, 1),
		done:    make(chan struct{}),
		peers:   make([]map[string]peer, len(cfg.Channels)),
	}
	for i := range s.peers {
		s.peers[i] = make(map[string]peer)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.stopCtx, s.stopped = context.WithCancel(context.Background())
	return s
}

// balanced reports whether the instance takes part in balancing: ordered,
// durable delivery.
func (s *subscription) balanced() bool {
	return s.cfg.Delivery == broker.DeliveryOrdered && !s.cfg.Ephemeral
}

// start runs the subscription and returns once its consumers are
// subscribed.
func (s *subscription) start(ctx context.Context) error {
	go s.run()
	select {
	case err := <-s.started:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run connects, consumes until the connection ends, the instance hands
// its groups over or Close begins, and connects again.
func (s *subscription) run() {
	defer close(s.done)
	first := true
	for failures := 0; ; {
		select {
		case <-s.stop:
			return
		default:
		}
		sess, err := s.open()
		if err != nil {
			failures++
			if failures == 1 || failures%20 == 0 {
				s.log.Warn("courier: ActiveMQ subscription cannot connect; retrying", "server", s.b.redacted, "error", err)
			}
			if !backoff.Sleep(s.stopCtx, backoff.Jitter(backoff.Exponential(s.b.cfg.reconnectMin, s.b.cfg.reconnectMax, failures))) {
				return
			}
			continue
		}
		if first {
			first = false
			s.started <- nil
		} else if failures > 0 {
			s.log.Info("courier: ActiveMQ subscription connected again", "server", s.b.redacted)
		}
		failures = 0
		why := sess.wait()
		sess.shutdown()
		if why != nil {
			s.log.Warn("courier: ActiveMQ subscription's connection lost; reconnecting", "error", why)
			failures = 1
		}
	}
}

// session is one connection's consumers.
type session struct {
	s    *subscription
	c    *stomp.Conn
	stop chan struct{} // closed when the session ends
	wg   sync.WaitGroup
	// handover asks for a new connection, which frees the message groups
	// this one owns.
	handover chan struct{}
	began    time.Time

	mu    sync.Mutex
	owned []map[int]bool // per channel: the shards delivered to this session
}

// delivery is a message frame and the index of its channel.
type delivery struct {
	ch int
	f  *stomp.Frame
}

// open connects and subscribes to every channel.
func (s *subscription) open() (*session, error) {
	ctx, cancel := context.WithTimeout(s.stopCtx, 30*time.Second)
	defer cancel()
	c, err := stomp.Dial(ctx, s.b.addr, s.b.stompCfg)
	if err != nil {
		return nil, err
	}
	sess := &session{s: s, c: c, stop: make(chan struct{}), handover: make(chan struct{}, 1), began: time.Now(),
		owned: make([]map[int]bool, len(s.cfg.Channels))}
	for i := range sess.owned {
		sess.owned[i] = make(map[int]bool)
	}
	prefetch := s.b.cfg.prefetch
	var route func(delivery)
	if s.cfg.Delivery == broker.DeliveryConcurrent {
		prefetch = s.cfg.MaxInFlight
		queue := make(chan delivery, prefetch*len(s.cfg.Channels))
		for range s.cfg.MaxInFlight {
			sess.wg.Go(func() { sess.work(queue) })
		}
		route = func(d delivery) {
			select {
			case queue <- d:
			case <-sess.stop:
			}
		}
	} else {
		shards := make([][]chan delivery, len(s.cfg.Channels))
		for i := range shards {
			shards[i] = make([]chan delivery, s.b.cfg.shards)
			for j := range shards[i] {
				q := make(chan delivery, prefetch)
				shards[i][j] = q
				sess.wg.Go(func() { sess.work(q) })
			}
		}
		route = func(d delivery) {
			shard := sess.shard(d.f)
			sess.mu.Lock()
			sess.owned[d.ch][shard] = true
			sess.mu.Unlock()
			select {
			case shards[d.ch][shard] <- d:
			case <-sess.stop:
			}
		}
	}
	for i, channel := range s.cfg.Channels {
		dest := "/queue/" + queueName(channel, s.cfg.SubscriberID)
		if s.cfg.Ephemeral {
			// The virtual topic itself: the messages sent while the
			// instance is subscribed, and no queue left behind.
			dest = topicDestination(channel)
		}
		headers := []stomp.Header{{Name: "ack", Value: "client-individual"}, {Name: "activemq.prefetchSize", Value: strconv.Itoa(prefetch)}}
		if err := c.Subscribe(ctx, strconv.Itoa(i), dest, headers, func(f *stomp.Frame) { route(delivery{i, f}) }); err != nil {
			sess.shutdown()
			return nil, fmt.Errorf("channel %q: %w", channel, err)
		}
		if s.balanced() {
			if err := c.Subscribe(ctx, "p"+strconv.Itoa(i), presenceTopic(channel, s.cfg.SubscriberID), nil, func(f *stomp.Frame) { s.announced(i, f) }); err != nil {
				sess.shutdown()
				return nil, fmt.Errorf("channel %q: presence: %w", channel, err)
			}
		}
	}
	if s.balanced() {
		sess.wg.Go(sess.balance)
	}
	return sess, nil
}

// shard returns the shard of a delivered message: its partition key's,
// or for a message without one, its message id's.
func (sess *session) shard(f *stomp.Frame) int {
	key := f.Value("PARTITION_ID")
	if key == "" {
		key = f.Value("message-id")
	}
	return shardOf(key, sess.s.b.cfg.shards)
}

// work handles the deliveries of one queue until the session ends.
func (sess *session) work(queue <-chan delivery) {
	for {
		select {
		case <-sess.stop:
			return
		case d := <-queue:
			select {
			case <-sess.stop:
				return // not acknowledged: ActiveMQ delivers it again
			default:
			}
			sess.handle(d)
		}
	}
}

func (sess *session) handle(d delivery) {
	s := sess.s
	channel := s.cfg.Channels[d.ch]
	m := decode(channel, d.f, time.Now())
	shard := -1
	if key := m.PartitionKey(); key != "" {
		shard = shardOf(key, s.b.cfg.shards)
	}
	if err := s.proc.Process(s.ctx, sess.stop, channel, shard, 0, m); err != nil {
		return // abandoned: left unacknowledged for redelivery
	}
	// An acknowledgement lost with the connection makes ActiveMQ deliver
	// the message again, as at-least-once delivery allows.
	_ = sess.c.Ack(d.f.Value("ack"))
}

// wait returns nil when the session should end because Close began or
// the instance hands its groups over, and the connection's error if it
// failed.
func (sess *session) wait() error {
	select {
	case <-sess.s.stop:
		return nil
	case <-sess.handover:
		return nil
	case <-sess.c.Done():
		return sess.c.Err()
	}
}

// shutdown stops the workers, waits for the handlers in flight and
// disconnects: ActiveMQ then puts the messages delivered to the session
// and not acknowledged back in their queue, in order, and frees the
// message groups the session owned.
func (sess *session) shutdown() {
	close(sess.stop)
	sess.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sess.c.Close(ctx); err != nil && !errors.Is(err, stomp.ErrClosed) {
		sess.s.log.Debug("courier: disconnecting from ActiveMQ", "error", err)
	}
}

// Close stops delivery to this instance and waits for its in-flight
// handlers; if ctx ends first it cancels their context, still waits for
// them, and returns ctx's error. See broker.Subscription.
func (s *subscription) Close(ctx context.Context) error {
	s.stopOnce.Do(func() {
		close(s.stop)
		s.stopped()
	})
	defer s.b.subs.Remove(s)
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.cancel()
		<-s.done
		return ctx.Err()
	}
}
