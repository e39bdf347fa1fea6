package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
)

const (
	// maxPollRecords bounds the records taken from the client per poll.
	maxPollRecords = 1000
	// maxQueued is how many fetched records a partition's worker may have
	// waiting before fetching of that partition pauses; it resumes when
	// half of them are handled.
	maxQueued = 2000
	// pollErrorBackoff spaces polls that return only errors.
	pollErrorBackoff = 250 * time.Millisecond
	// endOffsetsRetry spaces the attempts to read the end offsets of a
	// topic that has no leaders yet.
	endOffsetsRetry = 100 * time.Millisecond
)

// Subscribe starts one instance of the consumer group subscriberID on the
// channels' topics, creating the topics if needed, and returns once
// messages sent afterwards will reach the group. A group that has no
// committed offsets starts at the oldest retained message of each
// partition. ctx bounds only the set-up.
func (b *Broker) Subscribe(ctx context.Context, subscriberID string, channels []string, h broker.Handler, opts ...broker.SubscribeOption) (broker.Subscription, error) {
	cfg, err := adapter.NewSubscribeConfig(subscriberID, channels, h, opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	for _, name := range append([]string{subscriberID, cfg.DeadLetterChannel}, cfg.Channels...) {
		if err := validateTopic(name); err != nil {
			return nil, fmt.Errorf("kafka: %w: subscriber %q: %w", broker.ErrInvalidSubscription, subscriberID, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kafka: subscribe %q: %w", subscriberID, err)
	}
	if b.closed.Load() {
		return nil, fmt.Errorf("kafka: subscribe %q: %w", subscriberID, broker.ErrClosed)
	}
	if err := b.ensureTopics(ctx, cfg.Channels...); err != nil {
		return nil, fmt.Errorf("kafka: subscribe %q: %w", subscriberID, err)
	}
	s := &subscription{
		b:        b,
		proc:     b.newProcessor(cfg),
		log:      cfg.Logger.With(slog.String("subscriber", subscriberID)),
		workers:  make(map[topicPartition]*worker),
		pollDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
	if cfg.Delivery == broker.DeliveryConcurrent {
		s.jobs, s.poolStop = make(chan poolJob), make(chan struct{})
	}
	s.handlerCtx, s.cancelHandlers = context.WithCancel(context.Background())
	var pollCtx context.Context
	pollCtx, s.cancelPoll = context.WithCancel(context.Background())
	consume := []kgo.Opt{
		kgo.FetchMaxWait(time.Second),
		kgo.FetchMaxPartitionBytes(b.cfg.maxRecordBytes()),
	}
	if cfg.Ephemeral {
		// No group: the partitions of the topics as they are now, each
		// from its end offset at this moment, and nothing committed.
		start, err := b.endOffsets(ctx, cfg.Channels)
		if err != nil {
			s.cancelHandlers()
			s.cancelPoll()
			return nil, fmt.Errorf("kafka: subscribe %q: %w", subscriberID, err)
		}
		consume = append(consume, kgo.ConsumePartitions(start))
	} else {
		consume = append(consume,
			kgo.ConsumerGroup(subscriberID),
			kgo.ConsumeTopics(cfg.Channels...),
			kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.AutoCommitMarks(),
			kgo.AutoCommitInterval(b.cfg.commitInterval),
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsRevoked(s.revoked),
			kgo.OnPartitionsLost(s.lost),
			kgo.SessionTimeout(b.cfg.sessionTimeout),
			kgo.HeartbeatInterval(b.cfg.heartbeatInterval),
		)
	}
	s.cl, err = kgo.NewClient(b.clientOptions(consume...)...)
	if err != nil {
		s.cancelHandlers()
		s.cancelPoll()
		return nil, fmt.Errorf("kafka: subscribe %q: %w", subscriberID, err)
	}
	start := func() {
		if s.jobs != nil {
			for range cfg.MaxInFlight {
				s.poolDone.Add(1)
				go s.work()
			}
		}
		go s.poll(pollCtx)
	}
	if err := b.subs.Add(s, start); err != nil {
		s.cl.Close()
		s.cancelHandlers()
		s.cancelPoll()
		return nil, fmt.Errorf("kafka: subscribe %q: %w", subscriberID, err)
	}
	return s, nil
}

// endOffsets returns the end offset of every partition of topics, where an
// ephemeral subscription starts.
// A topic created a moment ago may not have leaders yet: that answer is
// tried again, every endOffsetsRetry, as long as ctx allows.
func (b *Broker) endOffsets(ctx context.Context, topics []string) (map[string]map[int32]kgo.Offset, error) {
	var listed kadm.ListedOffsets
	for {
		var err error
		listed, err = b.adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			err = listed.Error()
		}
		if err == nil {
			break
		}
		if !errors.Is(err, kerr.UnknownTopicOrPartition) && !errors.Is(err, kerr.LeaderNotAvailable) && !errors.Is(err, kerr.NotLeaderForPartition) {
			return nil, fmt.Errorf("list the end offsets: %w", b.sendErr(err))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list the end offsets: %w (the last answer: %w)", ctx.Err(), err)
		case <-time.After(endOffsetsRetry):
		}
	}
	start := make(map[string]map[int32]kgo.Offset, len(topics))
	listed.Each(func(o kadm.ListedOffset) {
		if start[o.Topic] == nil {
			start[o.Topic] = make(map[int32]kgo.Offset)
		}
		start[o.Topic][o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	return start, nil
}

// topicPartition names a partition.
type topicPartition struct {
	topic     string
	partition int32
}

// subscription is one member of a consumer group. One goroutine polls the
// client and hands each partition's records to that partition's worker,
// which runs them through the Processor in order and marks each handled
// one for the next commit.
type subscription struct {
	b    *Broker
	cl   *kgo.Client
	proc *adapter.Processor
	log  *slog.Logger

	handlerCtx     context.Context
	cancelHandlers context.CancelFunc
	cancelPoll     context.CancelFunc
	pollDone       chan struct{}

	// jobs feeds the pool of MaxInFlight goroutines that handle the
	// records of every partition in concurrent delivery mode; nil in
	// ordered mode. poolStop stops the pool once the workers stopped.
	jobs     chan poolJob
	poolStop chan struct{}
	poolDone sync.WaitGroup

	mu      sync.Mutex
	workers map[topicPartition]*worker

	closeOnce sync.Once
	done      chan struct{} // Close finished
	closeErr  error
}

// poll runs until pollCtx is cancelled. Rebalances wait while it hands out
// records (BlockRebalanceOnPoll), so a partition's records never reach a
// worker after the partition was revoked.
func (s *subscription) poll(ctx context.Context) {
	defer close(s.pollDone)
	for {
		fetches := s.cl.PollRecords(ctx, maxPollRecords)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			s.cl.AllowRebalance()
			return
		}
		failed := false
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			failed = true
			s.log.LogAttrs(ctx, slog.LevelWarn, "courier: kafka fetch failed",
				slog.String("topic", topic), slog.Int("partition", int(partition)), slog.Any("error", err))
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				s.dispatch(topicPartition{p.Topic, p.Partition}, p.Records)
			}
		})
		s.cl.AllowRebalance()
		if failed && fetches.NumRecords() == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(pollErrorBackoff):
			}
		}
	}
}

// dispatch queues records at their partition's worker, starting it if
// needed, and pauses fetching of a partition whose worker lags behind.
func (s *subscription) dispatch(tp topicPartition, recs []*kgo.Record) {
	s.mu.Lock()
	w, ok := s.workers[tp]
	if !ok {
		w = newWorker(s, tp)
		s.workers[tp] = w
		go w.run()
	}
	s.mu.Unlock()
	w.push(recs)
}

// take removes and returns the workers of the given partitions, or of
// every partition if parts is nil.
func (s *subscription) take(parts map[string][]int32) []*worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ws []*worker
	if parts == nil {
		for tp, w := range s.workers {
			ws = append(ws, w)
			delete(s.workers, tp)
		}
		return ws
	}
	for topic, ps := range parts {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if w, ok := s.workers[tp]; ok {
				ws = append(ws, w)
				delete(s.workers, tp)
			}
		}
	}
	return ws
}

// stopWorkers stops ws between messages and waits for their in-flight
// messages. If ctx ends first, the handlers' contexts are cancelled and
// stopWorkers still waits, then reports ctx's error. Fetching of their
// partitions is resumed, for when they are assigned again.
func (s *subscription) stopWorkers(ctx context.Context, ws []*worker) error {
	for _, w := range ws {
		close(w.stop)
	}
	var err error
	resume := map[string][]int32{}
	for _, w := range ws {
		select {
		case <-w.done:
		case <-ctx.Done():
			err = ctx.Err()
			s.cancelHandlers()
			<-w.done
		}
		resume[w.tp.topic] = append(resume[w.tp.topic], w.tp.partition)
	}
	if len(resume) > 0 {
		s.cl.ResumeFetchPartitions(resume)
	}
	return err
}

// revoked runs when the group takes partitions from this member: their
// workers stop between messages, the in-flight ones finish, and the
// offsets of everything handled are committed before the partitions go to
// their next owner, which therefore starts right after the last handled
// message.
func (s *subscription) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	_ = s.stopWorkers(ctx, s.take(parts))
	if err := cl.CommitMarkedOffsets(ctx); err != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "courier: kafka commit on revocation failed; the next owner will see some messages again",
			slog.Any("partitions", parts), slog.Any("error", err))
	}
}

// lost runs when this member was dropped from the group (a missed session
// timeout, say): the partitions may already be someone else's, so the
// workers stop and nothing is committed.
func (s *subscription) lost(ctx context.Context, _ *kgo.Client, parts map[string][]int32) {
	if len(parts) > 0 {
		s.log.LogAttrs(ctx, slog.LevelWarn, "courier: kafka partitions lost; their uncommitted messages will be delivered again",
			slog.Any("partitions", parts))
	}
	_ = s.stopWorkers(ctx, s.take(parts))
}

// Close stops polling, stops every worker between messages, waits for the
// in-flight messages, commits what was handled and leaves the group, so
// that the other instances take the partitions over at once.
func (s *subscription) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		go func() {
			defer close(s.done)
			s.closeErr = s.shutdown(ctx)
		}()
	})
	select {
	case <-s.done:
		return s.closeErr
	case <-ctx.Done():
		s.cancelHandlers()
		<-s.done
		if s.closeErr != nil {
			return s.closeErr
		}
		return ctx.Err()
	}
}

func (s *subscription) shutdown(ctx context.Context) error {
	defer s.b.subs.Remove(s)
	defer s.cancelHandlers()
	s.cancelPoll()
	<-s.pollDone
	err := s.stopWorkers(ctx, s.take(nil))
	if s.poolStop != nil {
		close(s.poolStop)
		s.poolDone.Wait()
	}
	// An unreachable cluster must not hold Close for ever: after a session
	// timeout the coordinator drops the member anyway.
	gctx, cancel := context.WithTimeout(ctx, s.b.cfg.sessionTimeout)
	defer cancel()
	if ctx.Err() == nil {
		if cerr := s.cl.CommitMarkedOffsets(gctx); cerr != nil && ctx.Err() == nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "courier: kafka commit on close failed; the next owner will see some messages again",
				slog.Any("error", cerr))
		}
	}
	if lerr := s.cl.LeaveGroupContext(gctx); lerr != nil && ctx.Err() == nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "courier: kafka leave group failed; the group rebalances after the session timeout",
			slog.Any("error", lerr))
	}
	s.cl.Close()
	if err == nil {
		err = ctx.Err()
	}
	return err
}
