package natsjs

import (
	"fmt"
	"hash/fnv"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/courier-go/courier/message"
)

// subjectPrefix starts the subject of every channel's messages.
const subjectPrefix = "courier"

// escapedPrefix names a header whose name and value travel URL-escaped,
// because NATS could not carry them verbatim.
const escapedPrefix = "Courier-Hdr-"

// Stream metadata keys.
const (
	metaChannel = "courier.channel"
	metaShards  = "courier.shards"
)

// readableLen bounds the readable part of generated names.
const readableLen = 64

// readable turns a channel or subscriber name into something JetStream
// accepts in a stream or consumer name, for people to read; the hash that
// follows it makes the name unique.
func readable(name string) string {
	if len(name) > readableLen {
		name = name[:readableLen]
	}
	return strings.ReplaceAll(name, ".", "_")
}

// hash64 is the FNV-1a hash of s in hexadecimal.
func hash64(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	return fmt.Sprintf("%016x", h.Sum64())
}

// streamName is the name of the stream that holds channel.
func streamName(channel string) string {
	return "courier-" + readable(channel) + "-" + hash64(channel)
}

// consumerName is the durable consumer of subscriberID on one shard of a
// channel's stream.
func consumerName(subscriberID string, shard int) string {
	return readable(subscriberID) + "-" + hash64(subscriberID) + "-" + strconv.Itoa(shard)
}

// channelSubjects is the subject filter of a channel's stream.
func channelSubjects(channel string) string { return subjectPrefix + "." + channel + ".*" }

// bareSubject is the subject of a channel without a shard token, which a
// client that is not Courier may publish to: the channel's stream captures
// it and stores its messages in shard 0 (see streamConfig).
func bareSubject(channel string) string { return subjectPrefix + "." + channel }

// shardSubject is the subject of one shard of a channel.
func shardSubject(channel string, shard int) string {
	return subjectPrefix + "." + channel + "." + strconv.Itoa(shard)
}

// memberToken turns a channel or subscriber name into one token of a
// key-value key: its dots become slashes, which names cannot contain, so
// the mapping is one to one.
func memberToken(name string) string { return strings.ReplaceAll(name, ".", "/") }

// memberPrefix starts the membership keys of the instances of subscriberID
// on channel; the instance id follows it.
func memberPrefix(subscriberID, channel string) string {
	return memberToken(subscriberID) + "." + memberToken(channel) + "."
}

// shardOf maps a partition key to a shard with FNV-1a, as the in-memory
// broker does.
func shardOf(key string, shards int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(shards))
}

// headerKeyForbidden are the printable characters nats.go refuses in a
// header name.
const headerKeyForbidden = "\"()/,:;<=>?@[\\]{}"

// hasPrefixFold reports whether s starts with prefix, ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// plainKey reports whether a header name can travel verbatim.
func plainKey(k string) bool {
	if k == "" || hasPrefixFold(k, "Nats-") || hasPrefixFold(k, escapedPrefix) {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c < 33 || c > 126 || strings.IndexByte(headerKeyForbidden, c) >= 0 {
			return false
		}
	}
	return true
}

// plainValue reports whether a header value survives NATS verbatim: NATS
// trims surrounding blanks and replaces line breaks.
func plainValue(v string) bool {
	return textproto.TrimString(v) == v && !strings.ContainsAny(v, "\r\n")
}

// headerWriter fills a NATS header map whose values share one backing
// array, so that encoding a message allocates the map and one slice rather
// than a slice per header.
type headerWriter struct {
	h    nats.Header
	vals []string
}

func newHeaderWriter(n int) headerWriter {
	return headerWriter{h: make(nats.Header, n), vals: make([]string, 0, n)}
}

// raw sets header k to v as it is.
func (w *headerWriter) raw(k, v string) {
	w.vals = append(w.vals, v)
	i := len(w.vals)
	w.h[k] = w.vals[i-1 : i : i]
}

// set writes one Courier header, escaping it if needed.
func (w *headerWriter) set(k, v string) {
	if plainKey(k) && plainValue(v) {
		w.raw(k, v)
		return
	}
	w.raw(escapedPrefix+url.QueryEscape(k), url.QueryEscape(v))
}

// encode builds the NATS message for m, sent to the channel's shard; date
// is the DATE header to add if m has none. Besides the Courier headers it
// carries Nats-Msg-Id (m.ID, for JetStream's duplicate detection) and
// Nats-Expected-Stream (the channel's stream, so that a stream that
// captured the subject by mistake refuses the message).
func encode(cs *channelStream, shard int, date string, m *message.Message) *nats.Msg {
	w := newHeaderWriter(len(m.Headers) + 5)
	for k, v := range m.Headers {
		if k == message.HeaderID || k == message.HeaderDestination {
			continue // the wire ID is m.ID; the destination is channel
		}
		w.set(k, v)
	}
	w.set(message.HeaderID, m.ID)
	w.raw(message.HeaderDestination, cs.channel)
	if _, ok := m.Headers[message.HeaderDate]; !ok {
		w.raw(message.HeaderDate, date)
	}
	w.raw(jetstream.MsgIDHeader, m.ID)
	w.raw(jetstream.ExpectedStreamHeader, cs.stream)
	return &nats.Msg{Subject: cs.subjects[shard], Header: w.h, Data: m.Payload}
}

// decode turns a delivered JetStream message back into a Courier message:
// the ID header becomes Message.ID, escaped headers are restored and the
// Nats-* headers are dropped.
func decode(msg jetstream.Msg, meta *jetstream.MsgMetadata) *message.Message {
	hdr := msg.Headers()
	m := &message.Message{Headers: make(message.Headers, len(hdr)), Payload: msg.Data()}
	for k, vs := range hdr {
		if len(vs) == 0 {
			continue
		}
		v := vs[0]
		switch {
		case hasPrefixFold(k, "Nats-"):
			continue
		case strings.HasPrefix(k, escapedPrefix):
			dk, err1 := url.QueryUnescape(k[len(escapedPrefix):])
			dv, err2 := url.QueryUnescape(v)
			if err1 == nil && err2 == nil {
				k, v = dk, dv
			}
		}
		if k == message.HeaderID {
			m.ID = v
			continue
		}
		m.Headers[k] = v
	}
	if m.ID == "" {
		// Not sent by Courier: fall back on JetStream's identity.
		if id := hdr.Get(jetstream.MsgIDHeader); id != "" {
			m.ID = id
		} else if meta != nil {
			m.ID = fmt.Sprintf("%s-%d", meta.Stream, meta.Sequence.Stream)
		}
	}
	return m
}
