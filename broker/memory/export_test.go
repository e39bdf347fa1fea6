package memory

import (
	"github.com/courier-go/courier/message"
)

// PublishRaw stores a message as Send would, but without checking it: the
// in-memory broker's stand-in for a client that is not Courier.
func PublishRaw(b *Broker, channel, key string, headers message.Headers, payload []byte) error {
	ch, err := b.channel(channel)
	if err != nil {
		return err
	}
	m := &message.Message{ID: headers.Get(message.HeaderID), Headers: headers.Clone(), Payload: payload}
	if m.ID == "" {
		m.ID = message.NewID()
	}
	m.Headers[message.HeaderDestination] = channel
	ch.shards[b.shardOf(key)].append(m)
	return nil
}
