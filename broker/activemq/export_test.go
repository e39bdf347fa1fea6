package activemq

import (
	"context"
	"errors"
	"fmt"

	"github.com/courier-go/courier/broker/activemq/internal/stomp"
	"github.com/courier-go/courier/broker/brokertest"
	"github.com/courier-go/courier/message"
)

// RawPublish publishes one message to channel as a STOMP client that is
// not Courier would: headers as given (under the names Send uses), to the
// message group of key, checked against nothing. A message ActiveMQ
// refuses (it closes the connection or answers with an ERROR) is reported
// with brokertest.ErrUnpublishable.
func RawPublish(ctx context.Context, b *Broker, channel, key string, headers message.Headers, payload []byte) error {
	c, err := stomp.Dial(ctx, b.addr, b.stompCfg)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	f := &stomp.Frame{Command: "SEND", Body: payload}
	f.Add("destination", topicDestination(channel))
	f.Add("persistent", "true")
	f.Add("JMSXGroupID", groupID(shardOf(key, b.cfg.shards)))
	for k, v := range headers {
		f.Add(nativeName(k), v)
	}
	err = c.Request(ctx, f)
	var serr *stomp.ServerError
	if errors.As(err, &serr) || errors.Is(err, stomp.ErrClosed) {
		return fmt.Errorf("%w: %w", brokertest.ErrUnpublishable, err)
	}
	return err
}
