package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/message"
)

// Broker is a broker.Broker on Apache Kafka (or a cluster speaking its
// protocol). It is safe for concurrent use.
type Broker struct {
	seeds []string
	cfg   config
	cl    *kgo.Client // the producer and admin client
	adm   *kadm.Client

	topicsMu sync.Mutex
	topics   map[string]bool // topics known to exist

	lastDate atomic.Pointer[dateStamp] // the DATE header of the current second

	subs   adapter.Subscriptions[*subscription]
	closed atomic.Bool // Close finished: nothing works any more
}

var _ broker.Broker = (*Broker)(nil)

// Open connects to the Kafka cluster reachable through seeds (host:port
// addresses of some of its brokers) and returns a Broker. It fails, within
// ctx, when no seed broker answers or the credentials given with
// WithClientOptions are refused.
func Open(ctx context.Context, seeds []string, opts ...Option) (*Broker, error) {
	if len(seeds) == 0 {
		return nil, errors.New("kafka: no seed brokers")
	}
	for _, s := range seeds {
		if s == "" || strings.ContainsAny(s, " ,/") {
			return nil, fmt.Errorf("kafka: seed broker %q is not a host:port address", s)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("kafka: connect to %s: %w", strings.Join(seeds, ","), err)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	b := &Broker{
		seeds:  slices.Clone(seeds),
		cfg:    cfg,
		topics: make(map[string]bool),
	}
	cl, err := kgo.NewClient(b.clientOptions(
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchMaxBytes(cfg.maxRecordBytes()),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		hint := ""
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			hint = " (the server closed the connection: are the credentials right, and do the SASL and TLS settings match the listener?)"
		}
		return nil, fmt.Errorf("kafka: connect to %s: %w%s", strings.Join(seeds, ","), err, hint)
	}
	b.cl, b.adm = cl, kadm.NewClient(cl)
	return b, nil
}

// clientOptions returns the options of a client of this Broker: the seeds,
// then extra, then the user's.
func (b *Broker) clientOptions(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(b.seeds...), kgo.ClientID("courier")}
	opts = append(opts, extra...)
	return append(opts, b.cfg.kgoOpts...)
}

// Client returns the Broker's producer client, for administration beyond
// the broker port. Closing it breaks the Broker.
func (b *Broker) Client() *kgo.Client { return b.cl }

// Send produces msgs to the channel's topic, in order, and returns once
// every in-sync replica of their partitions has them (acks=all, with the
// idempotent producer, so that retries neither duplicate nor reorder
// them). It creates the topic on first use, unless WithoutTopicCreation.
//
// With WithEventuateFormat the records are in Eventuate Tram's format.
func (b *Broker) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	return b.send(ctx, channel, b.cfg.eventuate, msgs)
}

// send is Send in Eventuate's format or in Courier's.
func (b *Broker) send(ctx context.Context, channel string, eventuate bool, msgs []*message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka: send to %q: %w", channel, err)
	}
	if b.closed.Load() {
		return fmt.Errorf("kafka: send to %q: %w", channel, broker.ErrClosed)
	}
	if err := adapter.PrepareSend(channel, msgs, b.cfg.limits); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	if err := validateTopic(channel); err != nil {
		return fmt.Errorf("kafka: send to %q: %w", channel, err)
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := b.ensureTopics(ctx, channel); err != nil {
		return err
	}
	date := b.date(time.Now())
	var small [4]*kgo.Record // most Sends carry a message or a few
	recs := small[:0]
	if len(msgs) > len(small) {
		recs = make([]*kgo.Record, 0, len(msgs))
	}
	for _, m := range msgs {
		if !eventuate {
			recs = append(recs, encode(channel, date, m))
			continue
		}
		r, err := encodeEventuate(channel, date, m)
		if err != nil {
			return fmt.Errorf("kafka: send to %q: %w", channel, err)
		}
		recs = append(recs, r)
	}
	for i, r := range b.cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			if errors.Is(r.Err, kerr.UnknownTopicID) {
				b.forgetTopic(channel) // deleted behind our back: the next Send starts afresh
			}
			return fmt.Errorf("kafka: send to %q: message %s: %w", channel, msgs[i].ID, b.sendErr(r.Err))
		}
	}
	return nil
}

// dateStamp is the DATE header value of one second.
type dateStamp struct {
	unix  int64
	value string
}

// date returns the DATE header value of now, formatted once per second
// rather than once per Send.
func (b *Broker) date(now time.Time) string {
	sec := now.Unix()
	if d := b.lastDate.Load(); d != nil && d.unix == sec {
		return d.value
	}
	d := &dateStamp{unix: sec, value: message.FormatDate(now)}
	b.lastDate.Store(d)
	return d.value
}

// sendErr classifies a produce error: a record over the topic's
// max.message.bytes is message.ErrPayloadTooLarge, and a closed client
// broker.ErrClosed.
func (b *Broker) sendErr(err error) error {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fmt.Errorf("%w: over the topic's max.message.bytes: %w", message.ErrPayloadTooLarge, err)
	case errors.Is(err, kgo.ErrClientClosed) || b.closed.Load():
		if !errors.Is(err, broker.ErrClosed) {
			return fmt.Errorf("%w: %w", broker.ErrClosed, err)
		}
	}
	return err
}

// ensureTopics creates the topics of channels that this Broker has not
// seen yet, with the configured partitions, replication factor and topic
// configuration. A topic that exists already is used as it is.
func (b *Broker) ensureTopics(ctx context.Context, channels ...string) error {
	b.topicsMu.Lock()
	var missing []string
	for _, ch := range channels {
		if !b.topics[ch] {
			missing = append(missing, ch)
		}
	}
	b.topicsMu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	if !b.cfg.createTopics {
		return b.checkTopics(ctx, missing)
	}
	resps, err := b.adm.CreateTopics(ctx, b.cfg.partitions, b.cfg.replicationFactor, b.cfg.topicConfigs, missing...)
	if err != nil {
		return fmt.Errorf("kafka: create topics %v: %w", missing, b.sendErr(err))
	}
	for _, ch := range missing {
		r, ok := resps[ch]
		if !ok {
			return fmt.Errorf("kafka: create topic %q: no answer from the cluster", ch)
		}
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %q (%d partitions, replication factor %d): %w %s",
				ch, b.cfg.partitions, b.cfg.replicationFactor, r.Err, r.ErrMessage)
		}
	}
	b.remember(missing)
	return nil
}

// checkTopics reports an error unless every one of topics exists.
func (b *Broker) checkTopics(ctx context.Context, topics []string) error {
	details, err := b.adm.ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("kafka: look up topics %v: %w", topics, b.sendErr(err))
	}
	for _, t := range topics {
		d, ok := details[t]
		if !ok {
			return fmt.Errorf("kafka: topic %q does not exist, and topic creation is off", t)
		}
		if d.Err != nil {
			return fmt.Errorf("kafka: topic %q: %w", t, d.Err)
		}
	}
	b.remember(topics)
	return nil
}

// validateTopic refuses the names Kafka reserves for its internal topics,
// which message.ValidateChannel lets through.
func validateTopic(name string) error {
	if strings.HasPrefix(name, "__") {
		return fmt.Errorf("%w: %q: names starting with \"__\" are reserved for Kafka's internal topics", message.ErrInvalidChannel, name)
	}
	return nil
}

// RemoveChannel deletes the channel's topic with every record in it. The
// committed offsets of the consumer groups that read it go with it on
// Kafka 2.x and later, or expire. See broker.ChannelRemover.
func (b *Broker) RemoveChannel(ctx context.Context, channel string) error {
	if err := message.ValidateChannel(channel); err != nil {
		return fmt.Errorf("kafka: remove channel %q: %w", channel, err)
	}
	if err := validateTopic(channel); err != nil {
		return fmt.Errorf("kafka: remove channel %q: %w", channel, err)
	}
	b.forgetTopic(channel)
	resps, err := b.adm.DeleteTopics(ctx, channel)
	if err == nil {
		if r, ok := resps[channel]; ok && r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			err = fmt.Errorf("%w %s", r.Err, r.ErrMessage)
		}
	}
	if err != nil {
		return fmt.Errorf("kafka: remove channel %q: %w", channel, b.sendErr(err))
	}
	return nil
}

// Ping asks a broker of the cluster for its metadata: it fails, within
// ctx, while none can be reached. See broker.Pinger.
func (b *Broker) Ping(ctx context.Context) error {
	if b.closed.Load() {
		return fmt.Errorf("kafka: ping: %w", broker.ErrClosed)
	}
	if err := b.cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: ping: %w", b.sendErr(err))
	}
	return nil
}

// RemoveSubscriber deletes the committed offsets of the consumer group
// subscriberID on the channels' topics, and the group itself once it has
// none left. See broker.SubscriberRemover. Kafka refuses while members of
// the group are still connected (NON_EMPTY_GROUP).
func (b *Broker) RemoveSubscriber(ctx context.Context, subscriberID string, channels []string) error {
	if err := message.ValidateChannel(subscriberID); err != nil {
		return fmt.Errorf("kafka: remove subscriber %q: %w", subscriberID, err)
	}
	fail := func(err error) error {
		return fmt.Errorf("kafka: remove subscriber %q from %v: %w", subscriberID, channels, b.sendErr(err))
	}
	offsets, err := b.adm.FetchOffsets(ctx, subscriberID)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil
	}
	if err != nil {
		return fail(err)
	}
	remove := make(kadm.TopicsSet)
	others := 0
	for topic, parts := range offsets {
		if !slices.Contains(channels, topic) {
			others += len(parts)
			continue
		}
		for p := range parts {
			remove.Add(topic, p)
		}
	}
	if others == 0 {
		resp, err := b.adm.DeleteGroup(ctx, subscriberID)
		if err == nil && resp.Err != nil && !errors.Is(resp.Err, kerr.GroupIDNotFound) {
			err = resp.Err
		}
		if err != nil {
			return fail(err)
		}
		return nil
	}
	if len(remove) == 0 {
		return nil
	}
	resps, err := b.adm.DeleteOffsets(ctx, subscriberID, remove)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// forgetTopic drops what this Broker knows of a topic that was deleted,
// here or elsewhere: the next Send creates it again, and the producer
// looks it up afresh rather than write to the old topic's id.
func (b *Broker) forgetTopic(topic string) {
	b.topicsMu.Lock()
	delete(b.topics, topic)
	b.topicsMu.Unlock()
	b.cl.PurgeTopicsFromClient(topic)
}

func (b *Broker) remember(topics []string) {
	b.topicsMu.Lock()
	for _, t := range topics {
		b.topics[t] = true
	}
	b.topicsMu.Unlock()
}

// Close closes every subscription made through this Broker, as
// Subscription.Close does, then the producer. Later calls of Send and
// Subscribe fail with broker.ErrClosed.
func (b *Broker) Close(ctx context.Context) error {
	first, err := b.subs.Close(ctx)
	if !first {
		return nil
	}
	b.closed.Store(true)
	b.cl.Close()
	return err
}
