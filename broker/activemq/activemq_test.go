package activemq_test

import (
	"context"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/activemq"
	"github.com/courier-go/courier/broker/brokertest"
	"github.com/courier-go/courier/internal/testserver"
	"github.com/courier-go/courier/message"
)

// open returns a Broker on the tests' server, closed when the test ends
// (the suite closes its own).
func open(t *testing.T, opts ...activemq.Option) *activemq.Broker {
	t.Helper()
	u := testserver.ActiveMQURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts = append([]activemq.Option{activemq.WithRebalanceInterval(200 * time.Millisecond)}, opts...)
	b, err := activemq.Open(ctx, u, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", u, err)
	}
	return b
}

func TestConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Suite{
		New: func(t *testing.T) broker.Broker { return open(t) },
		Features: brokertest.Features{
			// A subscriber id's queue outlives its instances.
			Resume: true,
			// ActiveMQ gives a freed message group to whichever
			// consumer the group's next message finds.
			BrokerPicksNextOwner: true,
		},
		Raw: func(t *testing.T, b broker.Broker, channel, key string, headers message.Headers, payload []byte) error {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			return activemq.RawPublish(ctx, b.(*activemq.Broker), channel, key, headers, payload)
		},
	})
}
