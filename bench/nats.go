package bench

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	wmessage "github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/natsjs"
	"github.com/courier-go/courier/broker/natsjs/embedded"
)

// natsSuite is Courier's NATS JetStream broker beside Watermill's NATS
// adapter in JetStream mode and raw nats.go, each on an embedded
// nats-server started the same way (embedded.Start: JetStream file
// storage in a fresh temporary directory, in-process connections), with
// every message stored in a file-backed stream, published with a wait for
// the server's acknowledgement and acknowledged by its consumer.
func natsSuite() Suite {
	return BrokerSuite{
		ID: "nats",
		Systems: func() []System {
			return []System{
				CourierBroker{Label: "courier-natsjs", Open: newCourierEmbeddedNATS},
				CourierBroker{Label: "courier-natsjs-concurrent", Open: newCourierEmbeddedNATS,
					SubscribeOptions: []broker.SubscribeOption{broker.WithConcurrentDelivery(benchInFlight)}},
				RawNATS(),
				RawNATSDedup(),
				RawNATSOrdered(rawOrderedShards),
				WatermillNATS(),
			}
		},
		FullMessages:  100_000,
		QuickMessages: 2_000,
		Rounds:        3,
		Checks: []Check{
			{System: "courier-natsjs", Peer: "raw-nats.go", Min: 0.8, Goal: "issue 3: >= 80% of raw nats.go"},
			{System: "courier-natsjs", Peer: "watermill-nats", Min: 1, Goal: "issue 3: >= Watermill's NATS adapter"},
			{System: "courier-natsjs", Peer: "raw-nats.go-ordered", Min: 0.8, Goal: ">= 80% of raw nats.go with the same guarantees"},
			{System: "courier-natsjs-concurrent", Peer: "raw-nats.go", Min: 0.9, Goal: "issue 21, concurrent: >= 0.9x raw nats.go"},
			{System: "courier-natsjs-concurrent", Peer: "raw-nats.go-dedup", Min: 0.9, Goal: "concurrent: >= 0.9x raw nats.go with the same guarantees"},
			{System: "courier-natsjs", Peer: "raw-nats.go-ordered", Min: 0.9, Goal: "issue 21, ordered: >= 0.9x raw nats.go with the same guarantees"},
			{System: "courier-natsjs", Peer: "watermill-nats", Min: 2, Goal: "issue 21, ordered: >= 2x Watermill's NATS adapter"},
		},
	}
}

// embeddedNATS starts a nats-server as Courier's embedded broker does, in
// a fresh temporary directory, and registers its shutdown in c.
func embeddedNATS(ctx context.Context, c *cleanup) (*embedded.Server, error) {
	dir, err := os.MkdirTemp("", "courier-bench-nats-")
	if err != nil {
		return nil, err
	}
	c.add(func(context.Context) error { return os.RemoveAll(dir) })
	srv, err := embedded.Start(ctx, dir)
	if err != nil {
		return nil, err
	}
	c.add(srv.Shutdown)
	return srv, nil
}

// rawStream is the stream and subject the raw and Watermill systems use.
// Watermill's adapter names the stream after the topic and subscribes to
// the topic as the subject, so the topic must be a valid stream name.
const rawStream = "bench_events"

// RawNATS is the workload on nats.go's jetstream package directly, with
// nothing on top: a file-backed stream, a synchronous Publish per message
// (which waits for the server's acknowledgement), and one durable pull
// consumer with explicit acks consumed by consumers Consume callbacks that
// acknowledge each message (Ack, which does not wait for the server, as
// Courier's does not). It is the ceiling for the Courier adapter, which
// adds headers, shards with per-key order and a retry/dead-letter path.
func RawNATS() System {
	return funcSystem{name: "raw-nats.go", start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		var c cleanup
		js, err := rawJetStream(ctx, &c)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: rawStream, Subjects: []string{rawStream},
			Storage: jetstream.FileStorage})
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: benchSubscriber,
			AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		var ackErrs atomic.Int64
		for range consumers {
			if err := rawConsume(&c, cons, nil, deliver, &ackErrs); err != nil {
				return nil, c.fail(ctx, err)
			}
		}
		return funcSession{
			publish: func(ctx context.Context, _ string, payload []byte) error {
				_, err := js.Publish(ctx, rawStream, payload)
				return err
			},
			close: rawClose(c, "raw nats.go", &ackErrs),
		}, nil
	}}
}

// rawConsume consumes cons with a callback that reads (if not nil) and
// delivers each message, then acknowledges it, counting the acks that
// fail, and registers its stop in c.
func rawConsume(c *cleanup, cons jetstream.Consumer, read func(jetstream.Msg), deliver func([]byte), ackErrs *atomic.Int64) error {
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if read != nil {
			read(m)
		}
		deliver(m.Data())
		if m.Ack() != nil {
			ackErrs.Add(1)
		}
	})
	if err != nil {
		return err
	}
	c.add(func(context.Context) error { cc.Stop(); return nil })
	return nil
}

// rawClose runs c and reports the acks that failed.
func rawClose(c cleanup, name string, ackErrs *atomic.Int64) func(context.Context) error {
	return func(ctx context.Context) error {
		err := c.run(ctx)
		if n := ackErrs.Load(); n > 0 {
			err = errors.Join(err, fmt.Errorf("%s: %d acks failed", name, n))
		}
		return err
	}
}

// rawJetStream starts an embedded server and connects to it, registering
// the shutdown and the close in c.
func rawJetStream(ctx context.Context, c *cleanup) (jetstream.JetStream, error) {
	srv, err := embeddedNATS(ctx, c)
	if err != nil {
		return nil, err
	}
	nc, err := srv.Connect()
	if err != nil {
		return nil, err
	}
	c.add(func(context.Context) error { nc.Close(); return nil })
	return jetstream.New(nc)
}

// rawSubjectsStream creates the file-backed stream of the raw systems that
// publish to subjects under rawStream, as Courier does to a channel's.
func rawSubjectsStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	return js.CreateStream(ctx, jetstream.StreamConfig{Name: rawStream, Subjects: []string{rawStream + ".*"},
		Storage: jetstream.FileStorage})
}

// rawOrderedShards is the number of shards of RawNATSOrdered: Courier's
// default.
const rawOrderedShards = natsjs.DefaultShards

// RawNATSOrdered is the workload on nats.go's jetstream package with the
// guarantees Courier's adapter gives, and nothing else: each message is
// published with a Nats-Msg-Id (JetStream's duplicate detection) to the
// subject of its key's shard (FNV-1a of the key), and each shard is a
// durable pull consumer with explicit acks and MaxAckPending 1, so that a
// key's messages are handled one at a time and in order. Each shard has
// one Consume callback (the consumers instances would share the shards out;
// on one connection, as every system here, that is the same thing). There
// is no membership, hand-over, retry or dead letter: it
// is the ceiling of Courier's design on this server, where RawNATS is the
// ceiling of the server itself.
func RawNATSOrdered(shards int) System {
	return funcSystem{name: "raw-nats.go-ordered", start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		var c cleanup
		js, err := rawJetStream(ctx, &c)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		stream, err := rawSubjectsStream(ctx, js)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		subjects := make([]string, shards)
		var ackErrs atomic.Int64
		for shard := range shards {
			subjects[shard] = rawStream + "." + strconv.Itoa(shard)
			cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
				Durable:       benchSubscriber + "-" + strconv.Itoa(shard),
				AckPolicy:     jetstream.AckExplicitPolicy,
				MaxAckPending: 1,
				FilterSubject: subjects[shard],
			})
			if err != nil {
				return nil, c.fail(ctx, err)
			}
			if err := rawConsume(&c, cons, nil, deliver, &ackErrs); err != nil {
				return nil, c.fail(ctx, err)
			}
		}
		return funcSession{
			publish: func(ctx context.Context, key string, payload []byte) error {
				h := fnv.New32a()
				_, _ = h.Write([]byte(key))
				_, err := js.PublishMsg(ctx, &nats.Msg{Subject: subjects[h.Sum32()%uint32(shards)], Data: payload},
					jetstream.WithMsgID(nuid.Next()))
				return err
			},
			close: rawClose(c, "raw nats.go ordered", &ackErrs),
		}, nil
	}}
}

// WatermillNATS is the workload on Watermill's NATS adapter
// (watermill-nats/v2, pkg/nats) in JetStream mode: the stream is created
// by the adapter (AutoProvision; file storage, the JetStream default),
// the subscriber is a durable queue group with consumers subscriptions
// (SubscribersCount), and acks are asynchronous (AckAsync), as Courier's.
// Publish waits for the server's acknowledgement of each message. The
// consumers read the subscription's output channel and ack each message,
// as a Watermill router handler would.
func WatermillNATS() System {
	return funcSystem{name: "watermill-nats", start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		var c cleanup
		srv, err := embeddedNATS(ctx, &c)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		natsOpts := []nats.Option{nats.InProcessServer(srv.Server()), nats.NoReconnect()}
		js := wmnats.JetStreamConfig{
			AutoProvision:    true,
			SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit()},
			AckAsync:         true,
			DurablePrefix:    benchSubscriber,
		}
		logger := watermill.NopLogger{}
		sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
			QueueGroupPrefix: benchSubscriber,
			SubscribersCount: consumers,
			AckWaitTimeout:   30 * time.Second,
			CloseTimeout:     5 * time.Second,
			NatsOptions:      natsOpts,
			JetStream:        js,
		}, logger)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		c.add(func(context.Context) error { return sub.Close() })
		pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{NatsOptions: natsOpts, JetStream: js}, logger)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		c.add(func(context.Context) error { return pub.Close() })
		return watermillConsume(ctx, "watermill-nats", c, sub, rawStream, 1, consumers, same(deliver),
			func(_ context.Context, key string, payload []byte) error {
				return pub.Publish(rawStream, watermillMessage(key, payload))
			})
	}}
}

// watermillMessage builds a message the way Watermill's documentation
// does: a new UUID, the payload and the key in the metadata.
func watermillMessage(key string, payload []byte) *wmessage.Message {
	m := wmessage.NewMessage(watermill.NewUUID(), payload)
	m.Metadata.Set("partition_key", key)
	return m
}

// watermillConsume subscribes sub to topic subscriptions times and drains
// each output channel with perSubscription goroutines that deliver and ack
// every message (as a Watermill router handler would), then returns a
// session that publishes with publish and, on Close, ends the
// subscriptions, runs c (which must close sub) and waits for the
// goroutines. deliverFor(i) is the delivery function of subscription i.
func watermillConsume(ctx context.Context, name string, c cleanup, sub wmessage.Subscriber, topic string,
	subscriptions, perSubscription int, deliverFor func(subscription int) func([]byte),
	publish func(context.Context, string, []byte) error) (Session, error) {
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.add(func(context.Context) error { cancel(); return nil })
	var (
		ackFailures atomic.Int64
		wg          sync.WaitGroup
	)
	for i := range subscriptions {
		deliver := deliverFor(i)
		msgs, err := sub.Subscribe(sctx, topic)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		for range perSubscription {
			wg.Go(func() {
				for m := range msgs {
					deliver(m.Payload)
					if !m.Ack() {
						ackFailures.Add(1)
					}
				}
			})
		}
	}
	return funcSession{publish: publish, close: func(ctx context.Context) error {
		err := c.run(ctx)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			err = errors.Join(err, fmt.Errorf("%s: consumers did not stop: %w", name, ctx.Err()))
		}
		if n := ackFailures.Load(); n > 0 {
			err = errors.Join(err, fmt.Errorf("%s: %d acks refused", name, n))
		}
		return err
	}}, nil
}

// same returns deliver for every subscription.
func same(deliver func([]byte)) func(int) func([]byte) {
	return func(int) func([]byte) { return deliver }
}

// RawNATSDedup is RawNATS with the guarantees Courier's adapter gives in
// concurrent delivery mode, and nothing else: each message is published
// with a Nats-Msg-Id (JetStream's duplicate detection) and the headers
// Courier writes (ID, DESTINATION, DATE, PARTITION_ID), to a stream
// capturing the channel's subjects; the consumers read the headers of
// each message, as a handler would, and acknowledge it. No order per key,
// as RawNATS: it is the ceiling of Courier's concurrent mode on this
// server, where RawNATS is the ceiling of the server itself.
func RawNATSDedup() System {
	return funcSystem{name: "raw-nats.go-dedup", start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		var c cleanup
		js, err := rawJetStream(ctx, &c)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		stream, err := rawSubjectsStream(ctx, js)
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: benchSubscriber,
			AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			return nil, c.fail(ctx, err)
		}
		var ackErrs, missing atomic.Int64
		read := func(m jetstream.Msg) {
			if m.Headers().Get("ID") == "" {
				missing.Add(1)
			}
		}
		for range consumers {
			if err := rawConsume(&c, cons, read, deliver, &ackErrs); err != nil {
				return nil, c.fail(ctx, err)
			}
		}
		subject := rawStream + ".0"
		return funcSession{
			publish: func(ctx context.Context, key string, payload []byte) error {
				id := nuid.Next()
				h := nats.Header{"ID": {id}, "DESTINATION": {rawStream}, "DATE": {time.Now().UTC().Format(time.RFC3339)},
					"PARTITION_ID": {key}, jetstream.MsgIDHeader: {id}}
				_, err := js.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: h, Data: payload})
				return err
			},
			close: func(ctx context.Context) error {
				err := rawClose(c, "raw nats.go dedup", &ackErrs)(ctx)
				if n := missing.Load(); n > 0 {
					err = errors.Join(err, fmt.Errorf("raw nats.go dedup: %d messages without their ID header", n))
				}
				return err
			},
		}, nil
	}}
}
