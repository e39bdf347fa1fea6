package kafka

import (
	"context"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/internal/eventuate"
	"github.com/courier-go/courier/message"
)

// WithEventuateFormat makes the Broker speak Eventuate Tram's Kafka
// format, so that Go services on Courier and Java services on Eventuate
// share topics:
//
//   - Send writes each message as Eventuate's CDC publishes a row of its
//     outbox: the record value is the JSON envelope
//     {"payload":"...","headers":{...}} (the headers with ID,
//     DESTINATION and DATE), the key the PARTITION_ID header or, without
//     one, the message ID, and no record headers. The payload must be
//     UTF-8 text, which is what the envelope carries (JSON, for Eventuate's
//     events and commands); other bytes are refused.
//   - Subscriptions read a record's value as that envelope, as Eventuate's
//     consumer does. A record that carries an ID record header is read in
//     Courier's own format instead (a dead letter, or a Courier producer
//     without this option). A record that is neither, such as a value
//     that is not JSON, is dead-lettered at once, untouched, with the
//     reason, and the handler never sees it.
//   - Dead letters are written in Courier's own format (the payload as it
//     was and the headers as record headers), which keeps the bytes of an
//     envelope that did not parse.
//
// Eventuate's CDC can also publish several messages of a partition in one
// record (its enableBatchProcessing, off by default, a binary format):
// subscriptions hand them to the handler one by one, in order, each
// dead-lettered on its own if need be; the record counts as handled once
// all are.
func WithEventuateFormat() Option {
	return func(c *config) error {
		c.eventuate = true
		return nil
	}
}

// encodeEventuate turns m into the record Eventuate's CDC would publish for
// it (MessageWithDestination.toJson as the value, partitionKeyFor as the
// key).
func encodeEventuate(channel, date string, m *message.Message) (*kgo.Record, error) {
	value, key, err := eventuate.Message(channel, date, m)
	if err != nil {
		return nil, broker.Permanent(err)
	}
	return &kgo.Record{Topic: channel, Key: []byte(key), Value: value}, nil
}

// delivery is a message of a record, with the context to handle it in.
type delivery struct {
	ctx context.Context
	m   *message.Message
}

// process hands the messages of r to the subscription's Processor, in
// order, and returns the first error (adapter.ErrAbandoned: stopped): one
// message, or in Eventuate's format those of a batch of its CDC.
func (s *subscription) process(stop <-chan struct{}, r *kgo.Record) error {
	for _, d := range s.b.decodeRecord(s.handlerCtx, r) {
		if err := s.proc.Process(d.ctx, stop, r.Topic, int(r.Partition), 0, d.m); err != nil {
			return err
		}
	}
	return nil
}

// decodeRecord decodes r as the Broker's format says: one message, or in
// Eventuate's format the messages of a batch of its CDC
// (enableBatchProcessing), in order. A record, or a message of a batch,
// that is not an Eventuate envelope comes back as Courier's decoding makes
// it, with a context that makes the subscription's handler refuse it.
func (b *Broker) decodeRecord(ctx context.Context, r *kgo.Record) []delivery {
	if !b.cfg.eventuate || hasIDHeader(r) {
		return []delivery{{ctx, decode(r)}}
	}
	if !eventuate.IsBatch(r.Value) {
		return []delivery{decodeEventuateOrRaw(ctx, r, "")}
	}
	msgs, err := eventuate.ParseBatch(r.Value)
	if err != nil {
		return []delivery{{eventuate.WithMalformed(ctx, err), decode(r)}}
	}
	out := make([]delivery, len(msgs))
	for i, bm := range msgs {
		one := &kgo.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: []byte(bm.Key), Value: []byte(bm.Value)}
		out[i] = decodeEventuateOrRaw(ctx, one, "-"+strconv.Itoa(i))
	}
	return out
}

// decodeEventuateOrRaw decodes r's envelope, or else returns r as
// Courier's decoding makes it, marked as no envelope. suffix tells apart
// the IDs made of the coordinates of one record's messages.
func decodeEventuateOrRaw(ctx context.Context, r *kgo.Record, suffix string) delivery {
	m, err := decodeEventuate(r, suffix)
	if err != nil {
		raw := decode(r)
		raw.ID += suffix
		return delivery{eventuate.WithMalformed(ctx, err), raw}
	}
	return delivery{ctx, m}
}

func hasIDHeader(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == message.HeaderID {
			return true
		}
	}
	return false
}

// decodeEventuate reads r's value as Eventuate's consumer does. A message
// without an ID gets one from the record's coordinates and suffix, one without
// DESTINATION the topic, and one without PARTITION_ID the key (bytes
// that are not UTF-8 as U+FFFD).
func decodeEventuate(r *kgo.Record, suffix string) (*message.Message, error) {
	payload, headers, err := eventuate.ParseEnvelope(r.Value)
	if err != nil {
		return nil, err
	}
	m := &message.Message{ID: headers[message.HeaderID], Headers: headers, Payload: []byte(payload)}
	delete(headers, message.HeaderID)
	if m.ID == "" {
		m.ID = r.Topic + "-" + strconv.FormatInt(int64(r.Partition), 10) + "-" + strconv.FormatInt(r.Offset, 10) + suffix
	}
	if _, ok := headers[message.HeaderDestination]; !ok {
		headers[message.HeaderDestination] = r.Topic
	}
	if _, ok := headers[message.HeaderPartitionID]; !ok && len(r.Key) > 0 {
		// Read as Java's StringDeserializer reads the key.
		headers[message.HeaderPartitionID] = strings.ToValidUTF8(string(r.Key), "\uFFFD")
	}
	return m, nil
}

// newProcessor returns the Processor of a subscription with cfg: in
// Eventuate's format, its handler refuses records that are not envelopes
// and its dead letters are written in Courier's format.
func (b *Broker) newProcessor(cfg broker.SubscribeConfig) *adapter.Processor {
	if !b.cfg.eventuate {
		return adapter.NewProcessor(cfg, b)
	}
	cfg.Handler = eventuate.Handler(cfg.Handler)
	return adapter.NewProcessor(cfg, nativeProducer{b})
}

// nativeProducer sends in Courier's own record format whatever the
// Broker's format.
type nativeProducer struct{ b *Broker }

func (p nativeProducer) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	return p.b.send(ctx, channel, false, msgs)
}
