package natsjs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/internal/connurl"
	"github.com/courier-go/courier/message"
)

// publishWindow bounds the messages of one Send awaiting JetStream's
// acknowledgement at a time.
const publishWindow = 256

// Broker is a broker.Broker on NATS JetStream. It is safe for concurrent
// use.
type Broker struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	ownConn bool // Close closes nc
	cfg     config
	rr      atomic.Uint32 // round-robin shard for messages without a key

	cacheMu  sync.RWMutex
	channels map[string]*channelStream
	members  *membership // nil until the first Subscribe

	subs   adapter.Subscriptions[broker.Subscription]
	closed atomic.Bool // Close finished: nothing works any more
}

var _ broker.Broker = (*Broker)(nil)

// channelStream is what a Broker knows of a channel's stream.
type channelStream struct {
	channel  string
	stream   string
	shards   int
	subjects []string // per shard
}

// membership is the key-value bucket of instances, with its heartbeat
// period.
type membership struct {
	kv        jetstream.KeyValue
	stream    string // the bucket's stream
	subjects  string // the prefix of the bucket's subjects
	ttl       time.Duration
	heartbeat time.Duration
}

// New returns a Broker that uses nc, which must reach a server with
// JetStream enabled. The caller keeps ownership of nc: Close leaves it
// open. ctx bounds the check that JetStream is available.
func New(ctx context.Context, nc *nats.Conn, opts ...Option) (*Broker, error) {
	if nc == nil {
		return nil, errors.New("natsjs: nil connection")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newBroker(ctx, nc, false, cfg)
}

// NewInProcess returns a Broker on a new in-process connection to srv (a
// nats-server running in this process, such as package embedded's), which
// the Broker closes when it is closed. Options given by WithNATSOptions
// apply to the connection. The connection does not reconnect: once the
// server shuts down, the Broker's calls fail.
func NewInProcess(ctx context.Context, srv nats.InProcessConnProvider, opts ...Option) (*Broker, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	all := append([]nats.Option{nats.Name("courier-embedded"), nats.InProcessServer(srv), nats.NoReconnect()}, cfg.natsOpts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("natsjs: connect to the in-process server: %w", err)
	}
	b, err := newBroker(ctx, nc, true, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return b, nil
}

// Open connects to the NATS server at url (a comma-separated list of
// servers is fine) and returns a Broker that owns the connection: Close
// closes it. The connection reconnects for ever after a loss; its options
// can be changed with WithNATSOptions. Open fails, within ctx, when no
// server answers, the credentials are refused or JetStream is not enabled.
// Its errors never show a password or token of the URL.
func Open(ctx context.Context, url string, opts ...Option) (*Broker, error) {
	where := connurl.Redacted(url)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("natsjs: connect to %s: %w", where, err)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	dial := 2 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		dial = min(dial, time.Until(dl))
		if dial <= 0 {
			return nil, fmt.Errorf("natsjs: connect to %s: %w", where, context.DeadlineExceeded)
		}
	}
	natsOpts := append([]nats.Option{
		nats.Name("courier"),
		nats.Timeout(dial),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
	}, cfg.natsOpts...)
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("natsjs: connect to %s: %w", where, connurl.Redact(err, url))
	}
	b, err := newBroker(ctx, nc, true, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return b, nil
}

func newBroker(ctx context.Context, nc *nats.Conn, own bool, cfg config) (*Broker, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(cfg.publishTimeout))
	if err != nil {
		return nil, fmt.Errorf("natsjs: %w", err)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return nil, fmt.Errorf("natsjs: JetStream is not available at %s: %w", nc.ConnectedUrlRedacted(), err)
	}
	return &Broker{
		nc:       nc,
		js:       js,
		ownConn:  own,
		cfg:      cfg,
		channels: make(map[string]*channelStream),
	}, nil
}

// Ping asks JetStream for the account's information: a round trip to the
// server that fails, within ctx, while it cannot be reached or JetStream
// is unavailable. See broker.Pinger.
func (b *Broker) Ping(ctx context.Context) error {
	if b.closed.Load() {
		return fmt.Errorf("natsjs: ping: %w", broker.ErrClosed)
	}
	if _, err := b.js.AccountInfo(ctx); err != nil {
		where := b.nc.ConnectedUrlRedacted()
		if where == "" {
			where = "(disconnected: " + b.nc.Status().String() + ")"
		}
		return fmt.Errorf("natsjs: ping %s: %w", where, err)
	}
	return nil
}

// Conn returns the Broker's NATS connection.
func (b *Broker) Conn() *nats.Conn { return b.nc }

// Send publishes msgs to the channel's stream, in order, and returns once
// JetStream has stored every one of them (or dropped it as a duplicate of
// a message with the same ID sent within the stream's duplicate window).
// It creates the channel's stream on first use.
func (b *Broker) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("natsjs: send to %q: %w", channel, err)
	}
	if b.closed.Load() {
		return fmt.Errorf("natsjs: send to %q: %w", channel, broker.ErrClosed)
	}
	if err := adapter.PrepareSend(channel, msgs, b.cfg.limits); err != nil {
		return fmt.Errorf("natsjs: %w", err)
	}
	cs, err := b.channelStream(ctx, channel)
	if err != nil {
		return err
	}
	date := message.FormatDate(time.Now())
	if len(msgs) == 1 {
		f, err := b.publish(cs, date, msgs[0])
		if err != nil {
			return err
		}
		return b.awaitAck(ctx, cs, f)
	}
	pending := make([]jetstream.PubAckFuture, 0, min(len(msgs), publishWindow))
	for _, m := range msgs {
		if len(pending) == publishWindow {
			if err := b.awaitAck(ctx, cs, pending[0]); err != nil {
				return err
			}
			pending = append(pending[:0], pending[1:]...)
		}
		f, err := b.publish(cs, date, m)
		if err != nil {
			return err
		}
		pending = append(pending, f)
	}
	for _, f := range pending {
		if err := b.awaitAck(ctx, cs, f); err != nil {
			return err
		}
	}
	return nil
}

// publish sends m to its shard of the channel's stream without waiting for
// JetStream's acknowledgement. The message carries its ID as Nats-Msg-Id
// and the stream it must land in (see encode).
func (b *Broker) publish(cs *channelStream, date string, m *message.Message) (jetstream.PubAckFuture, error) {
	var shard int
	if key := m.PartitionKey(); key != "" {
		shard = shardOf(key, cs.shards)
	} else {
		shard = int(b.rr.Add(1) % uint32(cs.shards))
	}
	f, err := b.js.PublishMsgAsync(encode(cs, shard, date, m))
	if err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			return nil, fmt.Errorf("natsjs: send to %q: %w: message %s does not fit the server's max_payload of %d bytes: %w",
				cs.channel, message.ErrPayloadTooLarge, m.ID, b.nc.MaxPayload(), err)
		}
		return nil, fmt.Errorf("natsjs: send to %q: message %s: %w", cs.channel, m.ID, b.sendErr(err))
	}
	return f, nil
}

// awaitAck waits for JetStream's acknowledgement of one published message.
func (b *Broker) awaitAck(ctx context.Context, cs *channelStream, f jetstream.PubAckFuture) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			b.forgetChannel(cs.channel) // deleted behind our back: recreate next time
		}
		if refused := refusal(err); refused != nil {
			return fmt.Errorf("natsjs: send to %q: %w: %w", cs.channel, refused, err)
		}
		return fmt.Errorf("natsjs: send to %q: %w", cs.channel, b.sendErr(err))
	case <-ctx.Done():
		return fmt.Errorf("natsjs: send to %q: waiting for the server's acknowledgement: %w", cs.channel, ctx.Err())
	}
}

// JetStream's error codes for a message it refuses to store however often
// it is sent again.
const (
	jsErrHeaderTooLarge  jetstream.ErrorCode = 10097 // headers over 64 KiB, as encoded
	jsErrMessageTooLarge                     = jetstream.JSErrCodeStreamMessageExceedsMaximum
)

// refusal returns the message package's validation error that matches
// JetStream's refusal of a message, or nil for other errors. Courier's
// own checks count headers before NATS encodes them (escaping makes some
// longer), so the server can refuse what Send let through; the sentinels
// make such a refusal permanent (broker.IsPermanent), so that a
// dead-letter send is not retried as it was.
func refusal(err error) error {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return nil
	}
	switch apiErr.ErrorCode {
	case jsErrHeaderTooLarge:
		return message.ErrHeadersTooLarge
	case jsErrMessageTooLarge:
		return message.ErrPayloadTooLarge
	}
	return nil
}

// sendErr adds broker.ErrClosed to errors caused by closing the Broker.
func (b *Broker) sendErr(err error) error {
	if b.closed.Load() && !errors.Is(err, broker.ErrClosed) {
		return fmt.Errorf("%w: %w", broker.ErrClosed, err)
	}
	return err
}

// streamConfig is the configuration of a new channel's stream. Besides the
// shard subjects it captures the bare subject, "courier.<channel>", which
// plain NATS clients publish to, and stores those messages on shard 0's
// subject: they reach every subscriber id, in the order they were
// published, though not in order with messages of the same partition key
// sent to their shards.
func (b *Broker) streamConfig(channel string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:             streamName(channel),
		Description:      "Courier channel " + channel,
		Subjects:         []string{channelSubjects(channel), bareSubject(channel)},
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: bareSubject(channel), Destination: shardSubject(channel, 0)},
		Retention:        jetstream.LimitsPolicy,
		Storage:          jetstream.FileStorage,
		Replicas:         b.cfg.replicas,
		MaxAge:           b.cfg.maxAge,
		Discard:          jetstream.DiscardOld,
		Metadata: map[string]string{
			metaChannel: channel,
			metaShards:  strconv.Itoa(b.cfg.shards),
		},
	}
}

// upgradeStream adds the bare subject and its transform (see streamConfig)
// to a channel's stream created by an earlier version of Courier, which
// captured only the shard subjects. If the server refuses, the stream goes
// on as it was, with a warning: plain clients must then publish to a
// shard's subject.
func (b *Broker) upgradeStream(ctx context.Context, channel string, stream jetstream.Stream) (jetstream.Stream, error) {
	cfg := stream.CachedInfo().Config
	if slices.Contains(cfg.Subjects, bareSubject(channel)) || !slices.Contains(cfg.Subjects, channelSubjects(channel)) {
		return stream, nil
	}
	want := b.streamConfig(channel)
	cfg.Subjects = append(cfg.Subjects, bareSubject(channel))
	cfg.SubjectTransform = want.SubjectTransform
	upgraded, err := b.js.UpdateStream(ctx, cfg)
	if err != nil {
		b.cfg.logger.Warn("courier: natsjs: could not add the bare subject to a channel's stream; plain clients must publish to a shard subject",
			"channel", channel, "stream", cfg.Name, "subject", bareSubject(channel), "error", err)
		return stream, nil
	}
	b.cfg.logger.Info("courier: natsjs: a channel's stream now captures its bare subject", "channel", channel, "stream", cfg.Name, "subject", bareSubject(channel))
	return upgraded, nil
}

// channelStream returns the channel's stream, creating it if needed.
func (b *Broker) channelStream(ctx context.Context, channel string) (*channelStream, error) {
	b.cacheMu.RLock()
	cs, ok := b.channels[channel]
	b.cacheMu.RUnlock()
	if ok {
		return cs, nil
	}
	name := streamName(channel)
	stream, err := b.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		stream, err = b.js.CreateStream(ctx, b.streamConfig(channel))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			stream, err = b.js.Stream(ctx, name) // created meanwhile by another Broker
		}
	}
	if err == nil {
		stream, err = b.upgradeStream(ctx, channel, stream)
	}
	if err != nil {
		return nil, fmt.Errorf("natsjs: channel %q: stream %s: %w", channel, name, b.sendErr(err))
	}
	info := stream.CachedInfo()
	cs = &channelStream{channel: channel, stream: name, shards: b.cfg.shards}
	if v, ok := info.Config.Metadata[metaShards]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("natsjs: channel %q: stream %s has an invalid %s %q", channel, name, metaShards, v)
		}
		cs.shards = n
	}
	cs.subjects = make([]string, cs.shards)
	for shard := range cs.subjects {
		cs.subjects[shard] = shardSubject(channel, shard)
	}
	want := channelSubjects(channel)
	found := false
	for _, s := range info.Config.Subjects {
		found = found || s == want
	}
	if !found {
		return nil, fmt.Errorf("natsjs: channel %q: stream %s exists with subjects %v, not %s", channel, name, info.Config.Subjects, want)
	}
	b.cacheMu.Lock()
	b.channels[channel] = cs
	b.cacheMu.Unlock()
	return cs, nil
}

// RemoveChannel deletes the channel's stream with every message in it and
// the consumers of every subscriber id on it. See broker.ChannelRemover.
func (b *Broker) RemoveChannel(ctx context.Context, channel string) error {
	if err := message.ValidateChannel(channel); err != nil {
		return fmt.Errorf("natsjs: remove channel %q: %w", channel, err)
	}
	b.forgetChannel(channel)
	err := b.js.DeleteStream(ctx, streamName(channel))
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("natsjs: remove channel %q: %w", channel, b.sendErr(err))
	}
	return nil
}

// RemoveSubscriber deletes the durable consumers of subscriberID on each
// channel's stream, one per shard and the one of concurrent delivery, and
// with them its position. See
// broker.SubscriberRemover. (Its membership keys expire by themselves.)
func (b *Broker) RemoveSubscriber(ctx context.Context, subscriberID string, channels []string) error {
	if err := message.ValidateChannel(subscriberID); err != nil {
		return fmt.Errorf("natsjs: remove subscriber %q: %w", subscriberID, err)
	}
	for _, channel := range channels {
		if err := message.ValidateChannel(channel); err != nil {
			return fmt.Errorf("natsjs: remove subscriber %q: %w", subscriberID, err)
		}
		stream, err := b.js.Stream(ctx, streamName(channel))
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("natsjs: remove subscriber %q from channel %q: %w", subscriberID, channel, b.sendErr(err))
		}
		shards, err := strconv.Atoi(stream.CachedInfo().Config.Metadata[metaShards])
		if err != nil || shards < 1 {
			shards = b.cfg.shards
		}
		names := []string{concurrentConsumerName(subscriberID)}
		for shard := range shards {
			names = append(names, consumerName(subscriberID, shard))
		}
		for _, name := range names {
			err := stream.DeleteConsumer(ctx, name)
			if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return fmt.Errorf("natsjs: remove subscriber %q from channel %q: consumer %s: %w", subscriberID, channel, name, b.sendErr(err))
			}
		}
	}
	return nil
}

func (b *Broker) forgetChannel(channel string) {
	b.cacheMu.Lock()
	delete(b.channels, channel)
	b.cacheMu.Unlock()
}

// membership returns the membership bucket, creating it if needed.
func (b *Broker) membership(ctx context.Context) (*membership, error) {
	b.cacheMu.RLock()
	m := b.members
	b.cacheMu.RUnlock()
	if m != nil {
		return m, nil
	}
	kv, err := b.js.KeyValue(ctx, MembershipBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = b.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         MembershipBucket,
			Description:    "Courier: instances of subscriber ids, for sharing out the shards",
			History:        1,
			TTL:            b.cfg.membershipTTL,
			LimitMarkerTTL: b.cfg.membershipTTL,
			Storage:        jetstream.FileStorage,
			Replicas:       b.cfg.replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = b.js.KeyValue(ctx, MembershipBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natsjs: membership bucket %s: %w", MembershipBucket, err)
	}
	status, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsjs: membership bucket %s: %w", MembershipBucket, err)
	}
	ttl := status.TTL()
	if ttl <= 0 || status.LimitMarkerTTL() <= 0 {
		return nil, fmt.Errorf("natsjs: membership bucket %s exists without a TTL and limit markers (ttl %v, marker ttl %v); delete it so that it can be recreated",
			MembershipBucket, ttl, status.LimitMarkerTTL())
	}
	m = &membership{
		kv:        kv,
		stream:    "KV_" + MembershipBucket,
		subjects:  "$KV." + MembershipBucket + ".",
		ttl:       ttl,
		heartbeat: ttl / 3,
	}
	b.cacheMu.Lock()
	b.members = m
	b.cacheMu.Unlock()
	return m, nil
}

// Close closes every subscription made through this Broker, as
// Subscription.Close does, then the connection if the Broker opened it.
// Later calls of Send and Subscribe fail with broker.ErrClosed.
func (b *Broker) Close(ctx context.Context) error {
	first, err := b.subs.Close(ctx)
	if !first {
		return nil
	}
	b.closed.Store(true)
	if b.ownConn {
		if !b.nc.IsClosed() {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = b.nc.FlushWithContext(fctx) // let the last acknowledgements out
			cancel()
		}
		b.nc.Close()
	}
	return err
}
