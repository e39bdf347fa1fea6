package amqp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/message"
)

// AMQP short strings (header names, message-id, content-type) hold at most
// 255 bytes.
const maxShortString = 255

// Encoded size of the content header frame, which must fit in one frame:
// each header field takes its name and value plus a name length (1 byte),
// a type tag (1) and a value length (4); propertiesOverhead leaves room for
// the other properties and the frame's own header.
const (
	headerFieldOverhead = 6
	propertiesOverhead  = 1024
)

// outgoing is a message ready to publish.
type outgoing struct {
	id  string
	key string
	pub amqp091.Publishing
}

// encode turns m, sent to channel, into an AMQP publishing. frameSize is
// the connection's largest frame (0 for no limit): the headers must fit in
// one.
func encode(channel string, m *message.Message, date string, now time.Time, frameSize int) (outgoing, error) {
	h := make(amqp091.Table, len(m.Headers)+3)
	size := propertiesOverhead
	for k, v := range m.Headers {
		if len(k) > maxShortString {
			return outgoing{}, fmt.Errorf("%w: message %s has a header name of %d bytes; AMQP allows %d", message.ErrInvalidHeader, m.ID, len(k), maxShortString)
		}
		h[k] = v
		size += headerFieldOverhead + len(k) + len(v)
	}
	// DESTINATION is the channel the message was sent to, even when the
	// message carries another (a dead letter keeps its original headers).
	h[message.HeaderID] = m.ID
	h[message.HeaderDestination] = channel
	size += 2*headerFieldOverhead + len(message.HeaderID) + len(m.ID) + len(message.HeaderDestination) + len(channel)
	if _, ok := m.Headers[message.HeaderDate]; !ok {
		h[message.HeaderDate] = date
		size += headerFieldOverhead + len(message.HeaderDate) + len(date)
	}
	pub := amqp091.Publishing{
		Headers:      h,
		DeliveryMode: amqp091.Persistent,
		Timestamp:    now,
		Body:         m.Payload,
	}
	if len(m.ID) <= maxShortString {
		pub.MessageId = m.ID
		size += len(m.ID)
	}
	if ct := m.Headers[message.HeaderContentType]; len(ct) <= maxShortString {
		pub.ContentType = ct
		size += len(ct)
	}
	if frameSize > 0 && size > frameSize {
		return outgoing{}, fmt.Errorf("%w: message %s has headers of about %d bytes on the wire, over the %d-byte AMQP frame", message.ErrHeadersTooLarge, m.ID, size, frameSize)
	}
	return outgoing{id: m.ID, key: RoutingKey(m.PartitionKey()), pub: pub}, nil
}

// routeBits is how many bits of a key's hash the routing key carries: the
// most shards a subscriber id can have is 1<<routeBits.
const routeBits = 10

// RoutingKey returns the routing key Send gives a message with the given
// partition key (the PARTITION_ID header): the top ten bits of a hash of
// the key, one word per bit ("0.1.1.0.1.0.0.1.1.0"), so that each shard
// queue matches a prefix of them (see the package documentation). A
// producer on another AMQP client that publishes to a channel's exchange
// with this routing key reaches the same shard as Send would, behind the
// key's earlier messages. An empty key gets random bits.
//
// The hash is computed by producers rather than by the server so that a
// key's shard never changes; RabbitMQ's consistent-hash exchange rebuilds
// its table when the node restarts and can then send a key to another
// queue than before.
func RoutingKey(partitionKey string) string {
	var h uint64
	if partitionKey == "" {
		h = rand.Uint64()
	} else {
		h = keyHash(partitionKey)
	}
	var b [2*routeBits - 1]byte
	for i := range routeBits {
		if i > 0 {
			b[2*i-1] = '.'
		}
		b[2*i] = '0' + byte(h>>(63-i)&1)
	}
	return string(b[:])
}

// keyHash is FNV-1a of the key followed by MurmurHash3's finalizer, which
// spreads every bit of the key over the high bits the routing key uses.
// It is part of the wire format: changing it moves keys between shards.
func keyHash(key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// decode turns a delivery into the message a handler sees: the "ID" header
// becomes the ID and leaves the headers. Header values that other producers
// may send as other AMQP types are turned into strings.
func decode(d *amqp091.Delivery) *message.Message {
	m := &message.Message{Headers: make(message.Headers, len(d.Headers)), Payload: d.Body}
	for k, v := range d.Headers {
		s := headerString(v)
		if k == message.HeaderID {
			m.ID = s
			continue
		}
		m.Headers[k] = s
	}
	if m.ID == "" {
		m.ID = d.MessageId
	}
	if m.ID == "" {
		m.ID = contentID(d)
	}
	return m
}

// contentID gives a message published without an ID (neither an ID header
// nor the message-id property, as a plain client may send it) an ID of its
// own: a hash of where it was published (exchange, routing key) and of
// what it carries (timestamp, headers, body). RabbitMQ keeps no position a
// message could be named by, and a redelivery must get the same ID for the
// inbox to recognise it; the price is that two such messages identical in
// every respect get one ID, and the inbox takes the second for a
// duplicate. Producers should set the message-id property.
func contentID(d *amqp091.Delivery) string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(d.Exchange)
	field(d.RoutingKey)
	field(d.Timestamp.UTC().Format(time.RFC3339Nano))
	keys := make([]string, 0, len(d.Headers))
	for k := range d.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		field(k)
		field(headerString(d.Headers[k]))
	}
	field(string(d.Body))
	return "amqp-" + hex.EncodeToString(h.Sum(nil)[:16])
}

func headerString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case nil:
		return ""
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(v)
}
