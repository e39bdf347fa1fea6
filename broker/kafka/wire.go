package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/message"
)

// encode turns m, sent to channel, into a Kafka record: the partition key
// as the record key, the headers as record headers, plus ID, DESTINATION
// and (if absent) DATE, as Eventuate's Kafka producer writes them.
func encode(channel, date string, m *message.Message) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, len(m.Headers)+3)
	hs = append(hs,
		kgo.RecordHeader{Key: message.HeaderID, Value: []byte(m.ID)},
		kgo.RecordHeader{Key: message.HeaderDestination, Value: []byte(channel)})
	for k, v := range m.Headers {
		if k == message.HeaderID || k == message.HeaderDestination {
			continue
		}
		hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if _, ok := m.Headers[message.HeaderDate]; !ok {
		hs = append(hs, kgo.RecordHeader{Key: message.HeaderDate, Value: []byte(date)})
	}
	r := &kgo.Record{Topic: channel, Value: m.Payload, Headers: hs}
	if key := m.PartitionKey(); key != "" {
		r.Key = []byte(key)
	}
	return r
}

// decode turns a consumed record back into a message: the ID header
// becomes Message.ID and the other headers the message's headers. A record
// written by another producer, without an ID header, gets an ID made of
// its topic, partition and offset, the same on every delivery; one without
// DESTINATION gets its topic.
func decode(r *kgo.Record) *message.Message {
	m := &message.Message{Headers: make(message.Headers, len(r.Headers)), Payload: r.Value}
	for _, h := range r.Headers {
		if h.Key == message.HeaderID {
			m.ID = string(h.Value)
			continue
		}
		m.Headers[h.Key] = string(h.Value)
	}
	if m.ID == "" {
		m.ID = fmt.Sprintf("%s-%d-%d", r.Topic, r.Partition, r.Offset)
	}
	if _, ok := m.Headers[message.HeaderDestination]; !ok {
		m.Headers[message.HeaderDestination] = r.Topic
	}
	if _, ok := m.Headers[message.HeaderPartitionID]; !ok && len(r.Key) > 0 {
		m.Headers[message.HeaderPartitionID] = string(r.Key)
	}
	return m
}
