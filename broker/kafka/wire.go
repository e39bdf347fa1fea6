package kafka

import (
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/message"
)

// inlineHeaders is how many record headers encode allocates together with
// the record: ID, DESTINATION, DATE and PARTITION_ID, the headers of a
// keyed message without headers of its own.
const inlineHeaders = 4

// record is a Kafka record allocated together with room for its headers,
// so that a typical message costs one allocation for both.
type record struct {
	kgo.Record
	headers [inlineHeaders]kgo.RecordHeader
}

// encode turns m, sent to channel, into a Kafka record: the payload, as
// is, as the record value; the partition key as the record key; the
// headers as Kafka record headers, plus ID, DESTINATION and (if absent)
// DATE. This is Courier's own format, whose header names are Eventuate
// Tram's; Eventuate's format is in eventuate.go. The key and the header
// values share one buffer.
func encode(channel, date string, m *message.Message) *kgo.Record {
	key := m.PartitionKey()
	_, hasDate := m.Headers[message.HeaderDate]
	count, size := 2, len(m.ID)+len(channel)+len(key)
	for k, v := range m.Headers {
		if k != message.HeaderID && k != message.HeaderDestination {
			count++
			size += len(v)
		}
	}
	if !hasDate {
		count++
		size += len(date)
	}
	rec := &record{}
	hs := rec.headers[:0]
	if count > inlineHeaders {
		hs = make([]kgo.RecordHeader, 0, count)
	}
	buf := make([]byte, 0, size)
	hs = append(hs,
		kgo.RecordHeader{Key: message.HeaderID, Value: appendValue(&buf, m.ID)},
		kgo.RecordHeader{Key: message.HeaderDestination, Value: appendValue(&buf, channel)})
	for k, v := range m.Headers {
		if k != message.HeaderID && k != message.HeaderDestination {
			hs = append(hs, kgo.RecordHeader{Key: k, Value: appendValue(&buf, v)})
		}
	}
	if !hasDate {
		hs = append(hs, kgo.RecordHeader{Key: message.HeaderDate, Value: appendValue(&buf, date)})
	}
	rec.Topic, rec.Value, rec.Headers = channel, m.Payload, hs
	if key != "" {
		rec.Key = appendValue(&buf, key)
	}
	return &rec.Record
}

// appendValue appends s to *buf, which has room for it, and returns the
// bytes of s within *buf.
func appendValue(buf *[]byte, s string) []byte {
	start := len(*buf)
	*buf = append(*buf, s...)
	return (*buf)[start:len(*buf):len(*buf)]
}

// decode turns a consumed record back into a message: the ID header
// becomes Message.ID and the other headers the message's headers. A record
// written by another producer, without an ID header, gets an ID made of
// its topic, partition and offset, the same on every delivery; one without
// DESTINATION gets its topic. The ID, the header values and the key are
// substrings of one string.
func decode(r *kgo.Record) *message.Message {
	size := len(r.Key)
	for _, h := range r.Headers {
		size += len(h.Value)
	}
	var sb strings.Builder
	sb.Grow(size)
	for _, h := range r.Headers {
		sb.Write(h.Value)
	}
	sb.Write(r.Key)
	all := sb.String()

	m := &message.Message{Headers: make(message.Headers, len(r.Headers)+1), Payload: r.Value}
	at := 0
	for _, h := range r.Headers {
		v := all[at : at+len(h.Value)]
		at += len(h.Value)
		if h.Key == message.HeaderID {
			m.ID = v
			continue
		}
		m.Headers[h.Key] = v
	}
	if m.ID == "" {
		m.ID = r.Topic + "-" + strconv.FormatInt(int64(r.Partition), 10) + "-" + strconv.FormatInt(r.Offset, 10)
	}
	if _, ok := m.Headers[message.HeaderDestination]; !ok {
		m.Headers[message.HeaderDestination] = r.Topic
	}
	if _, ok := m.Headers[message.HeaderPartitionID]; !ok && len(r.Key) > 0 {
		m.Headers[message.HeaderPartitionID] = all[at:]
	}
	return m
}
