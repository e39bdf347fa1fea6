package activemq

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/courier-go/courier/broker/activemq/internal/stomp"
	"github.com/courier-go/courier/message"
)

// escapedPrefix marks a Courier header sent under another name, because
// its own is one that STOMP or ActiveMQ gives a meaning to (or starts with
// the prefix itself).
const escapedPrefix = "courier-h-"

// reserved are the header names STOMP frames or ActiveMQ's STOMP transport
// read or set themselves.
var reserved = map[string]bool{
	"destination": true, "content-length": true, "content-type": true, "receipt": true,
	"transaction": true, "persistent": true, "priority": true, "expires": true,
	"correlation-id": true, "reply-to": true, "type": true, "message-id": true,
	"subscription": true, "ack": true, "redelivered": true, "timestamp": true,
	"original-destination": true, "transformation": true, "transformation-error": true,
	"id": true, "receipt-id": true, "selector": true, "login": true, "passcode": true,
}

// nativeName returns the STOMP header name a Courier header is sent under.
func nativeName(name string) string {
	l := strings.ToLower(name)
	if reserved[l] || strings.HasPrefix(l, "jms") || strings.HasPrefix(l, "activemq") || strings.HasPrefix(name, escapedPrefix) {
		return escapedPrefix + name
	}
	return name
}

// topicDestination is where Send publishes a channel's messages: a
// virtual topic, which ActiveMQ copies into the queue of every subscriber
// id.
func topicDestination(channel string) string { return "/topic/VirtualTopic." + channel }

// queueName is the queue of a subscriber id on a channel: ActiveMQ's
// virtual-topic consumer queue. A dot would end the subscriber id's part
// of the name, so dots become '~', which Courier's names never contain.
func queueName(channel, subscriberID string) string {
	return "Consumer." + strings.ReplaceAll(subscriberID, ".", "~") + ".VirtualTopic." + channel
}

// shardOf maps a partition key to one of n shards.
func shardOf(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// groupID is the message group (JMSXGroupID) of a shard.
func groupID(shard int) string { return "courier-" + strconv.Itoa(shard) }

// encode returns the SEND frame of m on channel, in shard group of n.
func encode(channel string, m *message.Message, date string, shards int) (*stomp.Frame, error) {
	f := &stomp.Frame{Command: "SEND", Body: m.Payload}
	f.Headers = make([]stomp.Header, 0, len(m.Headers)+6)
	f.Add("destination", topicDestination(channel))
	f.Add("persistent", "true")
	shard := rand.IntN(shards)
	if key := m.PartitionKey(); key != "" {
		shard = shardOf(key, shards)
	}
	f.Add("JMSXGroupID", groupID(shard))
	f.Add(message.HeaderID, m.ID)
	f.Add(message.HeaderDestination, channel)
	if _, ok := m.Headers.Lookup(message.HeaderDate); !ok {
		f.Add(message.HeaderDate, date)
	}
	for k, v := range m.Headers {
		if k == message.HeaderID || k == message.HeaderDestination {
			continue
		}
		name := nativeName(k)
		if n := stomp.HeaderLineLen(name, v); n > stomp.DefaultLimits.MaxHeaderLine {
			return nil, fmt.Errorf("%w: message %s: header %.40q takes %d bytes, over ActiveMQ's limit of %d for one header", message.ErrHeadersTooLarge, m.ID, k, n, stomp.DefaultLimits.MaxHeaderLine)
		}
		f.Add(name, v)
	}
	return f, nil
}

// native are the headers ActiveMQ adds to a MESSAGE frame, which are not
// the message's.
var native = map[string]bool{
	"content-length": true, "expires": true, "destination": true, "ack": true,
	"subscription": true, "priority": true, "original-destination": true,
	"message-id": true, "persistent": true, "timestamp": true, "redelivered": true,
	"JMSXGroupID": true, "JMSXGroupSeq": true, "type": true, "correlation-id": true, "reply-to": true,
	"content-type": true,
}

// decode turns a MESSAGE frame of channel into a Courier message. Headers
// are taken as they are, but ActiveMQ's own; a message without an ID
// header gets ActiveMQ's message-id hashed, the same on every delivery.
func decode(channel string, f *stomp.Frame, now time.Time) *message.Message {
	m := &message.Message{Payload: f.Body, Headers: make(message.Headers, len(f.Headers))}
	for _, h := range f.Headers {
		name := h.Name
		if native[name] {
			continue
		}
		name = strings.TrimPrefix(name, escapedPrefix)
		if _, dup := m.Headers[name]; dup {
			continue // the first value counts
		}
		m.Headers[name] = h.Value
	}
	if id, ok := m.Headers[message.HeaderID]; ok && id != "" {
		m.ID = id
	} else {
		sum := sha256.Sum256([]byte(channel + "\x00" + f.Value("message-id")))
		m.ID = "amq-" + hex.EncodeToString(sum[:16])
	}
	delete(m.Headers, message.HeaderID)
	if _, ok := m.Headers[message.HeaderDestination]; !ok {
		m.Headers[message.HeaderDestination] = channel
	}
	if _, ok := m.Headers[message.HeaderDate]; !ok {
		m.Headers[message.HeaderDate] = message.FormatDate(now)
	}
	return m
}
