package kafka_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/kafka"
	"github.com/courier-go/courier/internal/eventuate/eventuatetest"
	"github.com/courier-go/courier/message"
)

// rawClient is a plain Kafka client, standing for Eventuate's producer and
// consumer (EventuateKafkaProducer: a String key and the envelope's UTF-8
// bytes as the value, no record headers).
func rawClient(t *testing.T, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produceRaw(t *testing.T, cl *kgo.Client, topic, key string, value []byte) {
	t.Helper()
	if err := cl.ProduceSync(ctxFor(t), &kgo.Record{Topic: topic, Key: []byte(key), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// consumeRaw returns the first n records of topic.
func consumeRaw(t *testing.T, c *kfake.Cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := rawClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var recs []*kgo.Record
	ctx := ctxFor(t)
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d of %d records on %s: %v", len(recs), n, topic, ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestEventuateSendWritesEventuatesRecord: the record of a message is,
// byte for byte, the one Eventuate's CDC publishes for it.
func TestEventuateSendWritesEventuatesRecord(t *testing.T) {
	c := startCluster(t, kfake.NumBrokers(1))
	b := open(t, c, kafka.WithEventuateFormat(), kafka.WithPartitions(4))
	t.Cleanup(func() { b.Close(context.Background()) })

	m := &message.Message{
		ID: "0000018c39a0b5e2-0242ac1200050000",
		Headers: message.Headers{
			message.HeaderPartitionID:        "1511300065921",
			message.HeaderDate:               "Tue, 5 Dec 2023 10:15:30 GMT",
			message.HeaderEventAggregateType: "net.chrisrichardson.ftgo.orderservice.domain.Order",
			message.HeaderEventAggregateID:   "1511300065921",
			message.HeaderEventType:          "net.chrisrichardson.ftgo.orderservice.api.events.OrderCreatedEvent",
		},
		Payload: []byte(`{"orderDetails":{"lineItems":[{"quantity":5,"menuItemId":"1","name":"Chicken Vindaloo","price":"12.34"}],"orderTotal":"61.70","restaurantId":1,"consumerId":1511300065921},"deliveryAddress":"1 Main St\nApt \"B\"","restaurantName":"Ajanta"}`),
	}
	const topic = "net.chrisrichardson.ftgo.orderservice.domain.Order"
	if err := b.Send(ctxFor(t), topic, m); err != nil {
		t.Fatal(err)
	}
	// Without PARTITION_ID, the key is the message ID
	// (MessageWithDestinationPublishingStrategy.partitionKeyFor).
	unkeyed := message.New([]byte("{}"))
	if err := b.Send(ctxFor(t), topic, unkeyed); err != nil {
		t.Fatal(err)
	}
	recs := consumeRaw(t, c, topic, 2)
	byKey := map[string]*kgo.Record{}
	for _, r := range recs {
		byKey[string(r.Key)] = r
	}
	r := byKey["1511300065921"]
	if r == nil {
		t.Fatalf("no record keyed by the PARTITION_ID among %d", len(recs))
	}
	if want := eventuatetest.Fixture(t, "event.envelope"); string(r.Value) != string(want) {
		t.Errorf("value =\n%s\nwant Eventuate's\n%s", r.Value, want)
	}
	if len(r.Headers) != 0 {
		t.Errorf("record headers %v: Eventuate writes none", r.Headers)
	}
	// The partition Eventuate's producer picks for the key:
	// EventuateKafkaPartitioner, toPositive(murmur2(key)) % partitions.
	if want := int32(javaMurmur2([]byte("1511300065921"))&0x7fffffff) % 4; r.Partition != want {
		t.Errorf("partition %d, want Eventuate's %d", r.Partition, want)
	}
	if byKey[unkeyed.ID] == nil {
		t.Errorf("the message without PARTITION_ID is not keyed by its ID %s", unkeyed.ID)
	}

	if err := b.Send(ctxFor(t), topic, message.New([]byte{0xff})); !broker.IsPermanent(err) || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("Send of a payload that is not text: %v, want a permanent error", err)
	}
}

// TestEventuateRoundTrip: an event and a command that Eventuate published
// are dispatched by their Java type names to Courier handlers, and the
// command's reply is written as Eventuate reads it.
func TestEventuateRoundTrip(t *testing.T) {
	c := startCluster(t, kfake.NumBrokers(1))
	b := open(t, c, kafka.WithEventuateFormat())
	t.Cleanup(func() { b.Close(context.Background()) })
	raw := rawClient(t, c)
	eventuatetest.RoundTrip(t, b, eventuatetest.Eventuate{
		Publish: func(t *testing.T, channel, key string, envelope []byte) { produceRaw(t, raw, channel, key, envelope) },
		Reply: func(t *testing.T) ([]byte, string) {
			r := consumeRaw(t, c, eventuatetest.ReplyChannel, 1)[0]
			if len(r.Headers) != 0 {
				t.Errorf("reply record headers %v: Eventuate writes none", r.Headers)
			}
			return r.Value, string(r.Key)
		},
	}, "kitchen-service", "customer-service")
}

// TestEventuateMalformedRecordsAreDeadLettered: a record that is not an
// envelope goes to the dead-letter channel at once, as it was, and the
// records of its key behind it are handled.
func TestEventuateMalformedRecordsAreDeadLettered(t *testing.T) {
	for _, delivery := range []struct {
		name string
		opts []broker.SubscribeOption
	}{
		{"Ordered", nil},
		{"Concurrent", []broker.SubscribeOption{broker.WithConcurrentDelivery(4)}},
	} {
		t.Run(delivery.name, func(t *testing.T) {
			c := startCluster(t, kfake.NumBrokers(1))
			b := open(t, c, kafka.WithEventuateFormat(), kafka.WithPartitions(1))
			t.Cleanup(func() { b.Close(context.Background()) })
			raw := rawClient(t, c)
			const ch, dlq = "eventuate.in", "eventuate-sub.dead-letter"
			bad := [][]byte{[]byte("not json"), []byte(`{"payload":1,"headers":{}}`), []byte(`{"payload":"p","headers":{"ID":null}}`), {0xff, 0xfe}}
			handled := make(chan *message.Message, 10)
			var calls atomic.Int32
			opts := append([]broker.SubscribeOption{broker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}, delivery.opts...)
			sub, err := b.Subscribe(ctxFor(t), "eventuate-sub", []string{ch}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
				calls.Add(1)
				handled <- m
				return nil
			}), opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sub.Close(context.Background()) })
			for _, v := range bad {
				produceRaw(t, raw, ch, "k", v)
			}
			produceRaw(t, raw, ch, "k", []byte(`{"payload":"good","headers":{"ID":"0000018c39a0b5e2-0242ac1200050001","PARTITION_ID":"k"}}`))
			select {
			case m := <-handled:
				if string(m.Payload) != "good" || m.ID != "0000018c39a0b5e2-0242ac1200050001" {
					t.Errorf("handled %+v", m)
				}
			case <-ctxFor(t).Done():
				t.Fatal("the good record was not handled")
			}
			// In order, but for concurrent delivery, which keeps none.
			want := map[string]bool{}
			for _, v := range bad {
				want[string(v)] = true
			}
			for i, r := range consumeRaw(t, c, dlq, len(bad)) {
				if !want[string(r.Value)] || (delivery.opts == nil && string(r.Value) != string(bad[i])) {
					t.Errorf("dead letter %d = %q, want the record as it was, %q", i, r.Value, bad[i])
				}
				delete(want, string(r.Value))
				reason := ""
				for _, h := range r.Headers {
					if h.Key == message.HeaderDeadLetterReason {
						reason = string(h.Value)
					}
				}
				if !strings.Contains(reason, "not an Eventuate envelope") {
					t.Errorf("dead letter %d: reason %q", i, reason)
				}
			}
			sub.Close(context.Background())
			if n := calls.Load(); n != 1 {
				t.Errorf("the handler was called %d times, want once (for the good record only)", n)
			}
		})
	}
}

// javaMurmur2 is org.apache.kafka.common.utils.Utils.murmur2, which
// Eventuate's partitioner hashes keys with.
func javaMurmur2(data []byte) int32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	length := len(data)
	h := uint32(seed) ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[length&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}

// TestJavaMurmur2 checks javaMurmur2 against the values of Kafka's own
// UtilsTest.testMurmur2 (apache/kafka,
// clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java).
func TestJavaMurmur2(t *testing.T) {
	for in, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := javaMurmur2([]byte(in)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestEventuateBatches: a record of Eventuate's CDC holding a batch of
// messages (enableBatchProcessing) hands them to the handler one by one,
// in order; a message of a batch that is not an envelope is dead-lettered
// alone, and the others are handled.
func TestEventuateBatches(t *testing.T) {
	c := startCluster(t, kfake.NumBrokers(1))
	b := open(t, c, kafka.WithEventuateFormat(), kafka.WithPartitions(1))
	t.Cleanup(func() { b.Close(context.Background()) })
	raw := rawClient(t, c)
	const ch = "eventuate.batches"
	handled := make(chan *message.Message, 10)
	sub, err := b.Subscribe(ctxFor(t), "batch-sub", []string{ch}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		handled <- m
		return nil
	}), eventuatetest.Quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close(context.Background()) })

	batch := eventuatetest.Fixture(t, "batch.sbe")
	if again := eventuatetest.Batch([]string{eventuatetest.EventKey, eventuatetest.CommandKey},
		[]string{string(eventuatetest.Fixture(t, "event.envelope")), string(eventuatetest.Fixture(t, "command.envelope"))}); string(again) != string(batch) {
		t.Fatal("eventuatetest.Batch does not write batch.sbe")
	}
	produceRaw(t, raw, ch, eventuatetest.EventKey, batch)
	produceRaw(t, raw, ch, "k", eventuatetest.Batch([]string{"k", "k"}, []string{"not json", `{"payload":"after","headers":{"ID":"0000018c39a0b5e2-0242ac1200050009"}}`}))
	for _, want := range []string{eventuatetest.EventID, eventuatetest.CommandID, "0000018c39a0b5e2-0242ac1200050009"} {
		select {
		case m := <-handled:
			if m.ID != want {
				t.Fatalf("handled %s, want %s", m.ID, want)
			}
		case <-ctxFor(t).Done():
			t.Fatalf("%s was not handled", want)
		}
	}
	dead := consumeRaw(t, c, "batch-sub.dead-letter", 1)[0]
	if string(dead.Value) != "not json" {
		t.Errorf("dead letter %q, want the batch's message that is not an envelope", dead.Value)
	}
}
