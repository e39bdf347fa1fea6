package amqp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/internal/backoff"
)

// errHandover ends a shard consumer that hands its shard to another
// instance; it consumes the queue again at once, at the back of the line.
var errHandover = errors.New("shard handed over")

// subscription is one instance of a subscriber id: a consumer per shard
// queue of each of its channels, and a balancer.
type subscription struct {
	b      *Broker
	cfg    broker.SubscribeConfig
	proc   *adapter.Processor
	log    *slog.Logger
	id     string // tells this instance's consumers apart
	groups []*group

	ctx    context.Context // the handlers' context
	cancel context.CancelFunc
	stop   chan struct{} // closed when Close begins
	// stopCtx ends with stop; it bounds the AMQP calls of the goroutines.
	stopCtx    context.Context
	stopCancel context.CancelFunc

	wg   sync.WaitGroup // the shard consumers and the balancer
	done chan struct{}  // closed once they all returned

	consumers atomic.Uint64 // numbers the consumer tags
	// slots bounds the handlers in flight in concurrent delivery mode,
	// over every channel of the subscription.
	slots chan struct{}

	mu      sync.Mutex
	closing bool
}

// group is the subscriber id on one channel.
type group struct {
	channel  string
	presence string // the queue that counts the instances
	shards   []*shard
	// pool consumes the group's one queue in concurrent delivery mode,
	// instead of shards.
	pool *pool
	// ephemeral is set for a subscription made with broker.WithEphemeral:
	// one queue of this instance's own, with no presence queue.
	ephemeral bool
}

// ephemeralExpiry is how long RabbitMQ keeps the queue of an ephemeral
// subscription that nothing consumes: the time its instance has to
// reconnect, and how long the queue of an instance that died lingers.
const ephemeralExpiry = 5 * time.Minute

// cleanupTimeout bounds the deletion of an ephemeral subscription's queues
// when it closes.
const cleanupTimeout = 5 * time.Second

// shard consumes one shard queue. It owns the shard while RabbitMQ
// delivers the queue to it (single active consumer).
type shard struct {
	s     *subscription
	g     *group
	index int
	queue string
	// owned is set once a delivery arrived since the consumer started:
	// RabbitMQ delivers only to the active consumer, which stays active
	// until its channel closes.
	owned    atomic.Bool
	handover chan struct{} // asks the consumer to hand the shard over
}

func newSubscription(ctx context.Context, b *Broker, cfg broker.SubscribeConfig) *subscription {
	var id [4]byte
	_, _ = rand.Read(id[:])
	s := &subscription{
		b:    b,
		cfg:  cfg,
		proc: b.newProcessor(cfg),
		log:  cfg.Logger.With(slog.String("subscriber", cfg.SubscriberID)),
		id:   hex.EncodeToString(id[:]),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.stopCtx, s.stopCancel = context.WithCancel(context.Background())
	shards := b.cfg.shards
	if b.cfg.eventuate {
		shards = b.cfg.eventuatePartitions
	}
	if cfg.Ephemeral {
		shards = 1
	}
	concurrent := cfg.Delivery == broker.DeliveryConcurrent
	if concurrent {
		shards = 0
		s.slots = make(chan struct{}, cfg.MaxInFlight)
	}
	for _, name := range cfg.Channels {
		base := groupName(name, cfg.SubscriberID)
		if cfg.Ephemeral {
			base = groupName(name, cfg.SubscriberID+":ephemeral-"+s.id)
		}
		g := &group{channel: name, presence: presenceQueueName(base), ephemeral: cfg.Ephemeral}
		if concurrent {
			g.pool = &pool{s: s, g: g, queue: poolQueueName(base)}
		}
		for i := range shards {
			g.shards = append(g.shards, &shard{
				s:        s,
				g:        g,
				index:    i,
				queue:    shardQueueName(base, i),
				handover: make(chan struct{}, 1),
			})
		}
		s.groups = append(s.groups, g)
	}
	if b.cfg.eventuate {
		s.eventuateShards()
	}
	return s
}

// start declares the topology and starts the consumers; it returns once
// each consumes its queue.
func (s *subscription) start(ctx context.Context) error {
	defer func() {
		go func() {
			s.wg.Wait()
			close(s.done)
		}()
	}()
	// The channel that declares the topology stays open for the balancer:
	// its consumers of the presence queues count this instance.
	declare := func(sess *session) func(*amqp091.Channel) error {
		return func(ctl *amqp091.Channel) error {
			for _, g := range s.groups {
				if err := s.b.cfg.declare(sess.conn, ctl, g, g.shards); err != nil {
					return err
				}
			}
			if !s.sharded() {
				return nil // no shards to balance: no presence
			}
			return s.declarePresence(ctl)
		}
	}
	// Declaring again cures the failures that instances starting and
	// stopping at once cause (see retryAtStart): a presence queue is
	// deleted with its last consumer, so another instance's Close can
	// delete it between this one's declaring and consuming it (NOT_FOUND);
	// quorum queues declared at once can make RabbitMQ close the
	// connection (INTERNAL_ERROR). The loop is bounded, as such races do
	// not repeat for long, and so is each attempt, by ctx.
	var ctl *amqp091.Channel
	for attempt := 1; ; attempt++ {
		sess, err := s.b.subConn.get(ctx, nil)
		if err != nil {
			return fmt.Errorf("wait for the connection: %w", err)
		}
		ctl, err = s.b.openChannel(ctx, sess, declare(sess))
		if err == nil {
			break
		}
		if !retryAtStart(err) || attempt == maxStartAttempts || ctx.Err() != nil {
			return err
		}
		s.log.Debug("courier: declaring the subscription's queues failed; declaring them again", slog.Int("attempt", attempt), slog.Any("error", err))
		if !backoff.Sleep(ctx, time.Duration(attempt)*20*time.Millisecond) {
			return err
		}
	}
	if !s.sharded() {
		_ = ctl.Close()
	}

	var consumers []queueConsumer
	for _, g := range s.groups {
		for _, sh := range g.shards {
			consumers = append(consumers, sh)
		}
		if g.pool != nil {
			consumers = append(consumers, g.pool)
		}
	}
	total := len(consumers)
	started := make(chan error, total)
	for _, c := range consumers {
		s.wg.Add(1)
		go s.run(c, started)
	}
	if s.sharded() {
		s.wg.Add(1)
		go s.balance(ctl)
	}
	for range total {
		select {
		case err := <-started:
			if err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// retryAtStart reports whether a shard consumer that failed before it
// first started should try again rather than fail Subscribe: everything but
// the server's refusals that another attempt cannot cure (access refused,
// a queue declared with other arguments, a command not allowed). A quorum
// queue declared at the same moment by several instances, for one, can
// make RabbitMQ close the connection with INTERNAL_ERROR while its replicas
// start; the connection comes back and the next attempt succeeds.
// Subscribe's context still bounds the wait.
func retryAtStart(err error) bool {
	var amqpErr *amqp091.Error
	if !errors.As(err, &amqpErr) {
		return true
	}
	switch amqpErr.Code {
	case amqp091.AccessRefused, amqp091.PreconditionFailed, amqp091.NotAllowed, amqp091.NotImplemented, amqp091.CommandInvalid, amqp091.SyntaxError:
		return false
	}
	return true
}

// maxStartAttempts bounds the declarations of a subscription's topology
// at start when a presence queue vanishes meanwhile (see start).
const maxStartAttempts = 10

// isNotFound reports whether err is RabbitMQ's NOT_FOUND channel error.
func isNotFound(err error) bool {
	var amqpErr *amqp091.Error
	return errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound
}

func (s *subscription) stopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// sleep waits for d; it reports false if the subscription stops first.
func (s *subscription) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.stop:
		return false
	}
}

// sharded reports whether the subscription's instances share shards,
// which they balance through presence queues: not when it is ephemeral
// (one instance) or in concurrent delivery mode (no shards).
func (s *subscription) sharded() bool {
	return !s.cfg.Ephemeral && s.cfg.Delivery != broker.DeliveryConcurrent
}

// queueConsumer consumes one queue of a subscription: a shard, or the
// queue of concurrent delivery.
type queueConsumer interface {
	// consume consumes the queue until the subscription stops, the
	// queue is handed over or its AMQP channel fails; it declares the
	// queue first if redeclare is set, and sends nil on *started, then
	// sets it to nil, once it consumes.
	consume(redeclare bool, started *chan<- error) error
	// logger describes the consumer in log lines.
	logger() *slog.Logger
	group() *group
	queueName() string
}

func (sh *shard) logger() *slog.Logger {
	return sh.s.log.With(slog.String("channel", sh.g.channel), slog.Int("shard", sh.index))
}
func (sh *shard) group() *group     { return sh.g }
func (sh *shard) queueName() string { return sh.queue }

// run consumes c's queue until the subscription stops, starting again
// after every failure. started receives the outcome of the first attempt.
func (s *subscription) run(c queueConsumer, started chan<- error) {
	defer s.wg.Done()
	log := c.logger()
	redeclare := false
	for failures := 0; ; {
		err := c.consume(redeclare, &started)
		if s.stopping() {
			if started != nil {
				started <- fmt.Errorf("subscription closed while starting: %w", broker.ErrClosed)
			}
			return
		}
		if errors.Is(err, errHandover) {
			log.Debug("courier: shard handed over to another instance")
			if !s.b.eventuateHandover(s) {
				return
			}
			continue
		}
		if s.b.ownedElsewhere(err) {
			// Another instance consumes the partition: try again
			// soon, to take it over when that instance goes.
			if started != nil {
				started <- nil
				started = nil
			}
			failures, redeclare = 0, false
			if !s.sleep(eventuateTakeover) {
				return
			}
			continue
		}
		if started != nil && !retryAtStart(err) {
			started <- fmt.Errorf("channel %q: %w", c.group().channel, err)
			started = nil
		}
		failures++
		// Whatever broke, the queue may have gone with it: declare it
		// again next time.
		redeclare = true
		wait := backoff.Exponential(s.b.cfg.reconnectMin, s.b.cfg.reconnectMax, failures)
		level := slog.LevelDebug
		if failures == 1 {
			level = slog.LevelWarn
		}
		log.Log(s.stopCtx, level, "courier: queue consumer stopped; will resume",
			slog.String("queue", c.queueName()), slog.Duration("backoff", wait), slog.Any("error", err))
		if !s.sleep(wait) {
			return
		}
	}
}

// consume opens a channel, consumes the shard queue on it and handles the
// deliveries, one at a time, until the subscription stops, the shard is
// handed over or the channel fails. It closes the channel when it returns,
// which gives the shard to the next instance and returns every message it
// did not acknowledge to the head of the queue in the same step.
func (sh *shard) consume(redeclare bool, started *chan<- error) error {
	s := sh.s
	if s.b.cfg.eventuate {
		defer sh.owned.Store(false) // its exclusive consumer is gone
	}
	var declare func(*amqp091.Connection, *amqp091.Channel) error
	if redeclare {
		declare = func(conn *amqp091.Connection, ch *amqp091.Channel) error {
			return s.b.cfg.declareGroup(conn, ch, sh.g, []*shard{sh})
		}
	}
	// Exclusive in Eventuate's format, where the queue has no single
	// active consumer.
	ch, deliveries, closes, err := s.openConsumer(sh.queue, declare, s.b.cfg.prefetch, s.b.cfg.eventuate)
	if err != nil {
		return err
	}
	// Never basic.cancel: see the package documentation.
	defer ch.Close()

	sh.owned.Store(s.b.cfg.eventuate) // an exclusive consumer owns its queue at once
	select {
	case <-sh.handover: // a request meant for the previous consumer
	default:
	}
	if *started != nil {
		*started <- nil
		*started = nil
	}
	acks := ackBatch{ch: ch, max: max(1, s.b.cfg.prefetch/2)}
	for {
		// Take the next delivery at once if it is already here, and
		// acknowledge what was handled only when none is, or when the
		// batch is full: one basic.ack with multiple set then covers
		// several messages. Before waiting, and before every return on a
		// live channel, the handled messages are acknowledged, so that a
		// shard handed over never returns a handled message to its queue.
		var (
			d       amqp091.Delivery
			ok, got bool
		)
		if acks.n > 0 && acks.n < acks.max {
			select {
			case d, ok = <-deliveries:
				got = true
			default:
			}
		}
		if !got {
			if err := acks.flush(); err != nil {
				return fmt.Errorf("acknowledge messages from queue %q: %w", sh.queue, err)
			}
			select {
			case <-s.stop:
				return nil
			case <-sh.handover:
				if sh.owned.Load() {
					return errHandover
				}
				continue
			case d, ok = <-deliveries:
			}
		}
		if !ok {
			return fmt.Errorf("consumer of queue %q ended: %w", sh.queue, closeReason(closes))
		}
		if s.stopping() {
			return acks.flush()
		}
		sh.owned.Store(true)
		ctx, m := s.b.decodeDelivery(s.ctx, &d)
		if err := s.proc.Process(ctx, s.stop, sh.g.channel, sh.index, 0, m); err != nil {
			// Abandoned because the subscription is closing: closing
			// the channel returns the message.
			return acks.flush()
		}
		acks.add(d.DeliveryTag)
	}
}

// openConsumer opens an AMQP channel on the subscription's connection,
// runs declare on it if not nil, sets the prefetch and consumes queue
// (exclusively if asked), all within the subscription's life. It returns
// the channel, its deliveries and the channel's close notifications.
func (s *subscription) openConsumer(queue string, declare func(*amqp091.Connection, *amqp091.Channel) error, prefetch int, exclusive bool) (
	*amqp091.Channel, <-chan amqp091.Delivery, chan *amqp091.Error, error) {
	sess, err := s.b.subConn.get(s.stopCtx, s.stop)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("wait for the connection: %w", err)
	}
	var (
		closes     chan *amqp091.Error
		deliveries <-chan amqp091.Delivery
	)
	tag := consumerTag(s.id, s.consumers.Add(1))
	ch, err := s.b.openChannel(s.stopCtx, sess, func(ch *amqp091.Channel) error {
		closes = ch.NotifyClose(make(chan *amqp091.Error, 1))
		if declare != nil {
			if err := declare(sess.conn, ch); err != nil {
				return err
			}
		}
		if err := ch.Qos(prefetch, 0, false); err != nil {
			return fmt.Errorf("set the prefetch: %w", err)
		}
		var err error
		if deliveries, err = ch.Consume(queue, tag, false, exclusive, false, false, nil); err != nil {
			return fmt.Errorf("consume queue %q: %w", queue, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return ch, deliveries, closes, nil
}

// ackBatch gathers the acknowledgements of a shard consumer's handled
// messages into one basic.ack with multiple set.
type ackBatch struct {
	ch   *amqp091.Channel
	max  int    // acknowledge at the latest after this many messages
	last uint64 // delivery tag of the last handled message
	n    int    // handled messages not yet acknowledged
}

func (a *ackBatch) add(tag uint64) { a.last, a.n = tag, a.n+1 }

// flush acknowledges the handled messages, if any.
func (a *ackBatch) flush() error {
	if a.n == 0 {
		return nil
	}
	a.n = 0
	return a.ch.Ack(a.last, true)
}

func closeReason(closes chan *amqp091.Error) error {
	select {
	case err, ok := <-closes:
		if ok && err != nil {
			return err
		}
	default:
	}
	return amqp091.ErrClosed
}

// declarePresence consumes the presence queue of every group on ch.
func (s *subscription) declarePresence(ch *amqp091.Channel) error {
	for _, g := range s.groups {
		tag := consumerTag(s.id, s.consumers.Add(1))
		if err := s.b.cfg.declarePresence(ch, g, tag); err != nil {
			return fmt.Errorf("channel %q: %w", g.channel, err)
		}
	}
	return nil
}

// presence opens a channel that consumes the presence queues; it returns
// nil if it cannot.
func (s *subscription) presence() *amqp091.Channel {
	sess, err := s.b.subConn.get(s.stopCtx, s.stop)
	if err != nil {
		return nil
	}
	ch, err := s.b.openChannel(s.stopCtx, sess, s.declarePresence)
	if err != nil {
		if !s.stopping() {
			s.log.Debug("courier: cannot register the instance's presence; will retry", slog.Any("error", err))
		}
		return nil
	}
	return ch
}

// balance periodically hands over the shards this instance owns beyond its
// fair share, so that instances share the load. ctl consumes the presence
// queues; balance owns it and opens a new one when it fails.
func (s *subscription) balance(ctl *amqp091.Channel) {
	defer s.wg.Done()
	defer func() {
		if ctl != nil {
			_ = ctl.Close()
		}
	}()
	t := time.NewTicker(s.b.cfg.rebalanceInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if ctl == nil || ctl.IsClosed() {
			if ctl = s.presence(); ctl == nil {
				continue
			}
		}
		for _, g := range s.groups {
			if !s.rebalance(g, ctl) {
				ctl = nil // closed by the failed call
				break
			}
		}
	}
}

// rebalance hands over the group's shards beyond this instance's share. It
// reports false if ctl failed.
func (s *subscription) rebalance(g *group, ctl *amqp091.Channel) bool {
	var owned []*shard
	for _, sh := range g.shards {
		if sh.owned.Load() {
			owned = append(owned, sh)
		}
	}
	if len(owned) <= 1 {
		return true
	}
	var n int
	err := s.b.call(s.stopCtx, func() error {
		var err error
		n, err = instances(ctl, g)
		return err
	}, func() { _ = ctl.Close() })
	if err != nil {
		if !s.stopping() {
			s.log.Debug("courier: cannot count the instances", slog.String("channel", g.channel), slog.Any("error", err))
		}
		return false
	}
	n = max(n, 1)
	share := (len(g.shards) + n - 1) / n
	if len(owned) <= share {
		return true
	}
	for _, sh := range owned[share:] {
		select {
		case sh.handover <- struct{}{}:
		default:
		}
	}
	s.log.Debug("courier: handing shards over", slog.String("channel", g.channel),
		slog.Int("owned", len(owned)), slog.Int("instances", n), slog.Int("share", share))
	return true
}

// Close stops the instance: no new message is handed to its handlers, the
// in-flight ones finish (their contexts are cancelled if ctx ends first),
// and then each shard's channel is closed, which returns the messages not
// acknowledged to their queues and gives the shards to the other instances.
func (s *subscription) Close(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closing
	if first {
		s.closing = true
		close(s.stop)
		s.stopCancel()
	}
	s.mu.Unlock()

	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		s.cancel()
		<-s.done
		err = ctx.Err()
	}
	if first {
		s.cancel()
		if s.cfg.Ephemeral {
			s.deleteQueues()
		}
		s.b.subs.Remove(s)
	}
	return err
}

// deleteQueues deletes the queues of an ephemeral subscription, which no
// one else reads; if it cannot, RabbitMQ deletes them after
// ephemeralExpiry.
func (s *subscription) deleteQueues() {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	sess, err := s.b.subConn.get(ctx, nil)
	if err == nil {
		var ch *amqp091.Channel
		ch, err = s.b.openChannel(ctx, sess, func(ch *amqp091.Channel) error {
			for _, g := range s.groups {
				var queues []string
				for _, sh := range g.shards {
					queues = append(queues, sh.queue)
				}
				if g.pool != nil {
					queues = append(queues, g.pool.queue)
				}
				for _, q := range queues {
					if _, err := ch.QueueDelete(q, false, false, false); err != nil {
						return fmt.Errorf("delete queue %q: %w", q, err)
					}
				}
			}
			return nil
		})
		if ch != nil {
			_ = ch.Close()
		}
	}
	if err != nil {
		s.log.Debug("courier: cannot delete the ephemeral queues; RabbitMQ deletes them when they expire",
			slog.Duration("expiry", ephemeralExpiry), slog.Any("error", err))
	}
}

// openChannel opens an AMQP channel on sess and runs setup on it, through
// Broker.call so that ctx bounds both. If either fails, or ctx ends first,
// the channel is closed and the error returned.
func (b *Broker) openChannel(ctx context.Context, sess *session, setup func(*amqp091.Channel) error) (*amqp091.Channel, error) {
	var ch *amqp091.Channel
	err := b.call(ctx, func() error {
		var err error
		if ch, err = sess.conn.Channel(); err != nil {
			return fmt.Errorf("open a channel: %w", err)
		}
		if err := setup(ch); err != nil {
			_ = ch.Close()
			return err
		}
		return nil
	}, func() {
		if ch != nil {
			_ = ch.Close()
		}
	})
	if err != nil {
		return nil, err
	}
	return ch, nil
}
