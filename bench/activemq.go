package bench

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/activemq"
	"github.com/courier-go/courier/broker/amqp"
	"github.com/courier-go/courier/internal/connurl"
)

// ActiveMQURLEnv names the ActiveMQ server of the activemq suite.
const (
	ActiveMQURLEnv     = "COURIER_ACTIVEMQ_URL"
	ActiveMQURLDefault = "activemq://127.0.0.1:61613"
)

func activeMQURL() string {
	if v := os.Getenv(ActiveMQURLEnv); v != "" {
		return v
	}
	return ActiveMQURLDefault
}

// probeActiveMQ connects to the STOMP port once.
func probeActiveMQ(ctx context.Context) error {
	u, err := url.Parse(activeMQURL())
	if err == nil {
		var conn net.Conn
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), activemq.DefaultPort)
		}
		if conn, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", host); err == nil {
			return conn.Close()
		}
	}
	return fmt.Errorf("%w: ActiveMQ at %s: %v; start it with scripts/services/activemq.sh (or set %s)",
		ErrUnavailable, connurl.Redacted(activeMQURL()), err, ActiveMQURLEnv)
}

// activeMQSuite is Courier's ActiveMQ broker, in ordered and in
// concurrent delivery, beside Courier's RabbitMQ broker with classic
// queues on the same machine: every message persistent and confirmed
// before Publish returns (a STOMP receipt, a publisher confirm), consumed
// by 4 instances of one subscriber id and acknowledged one by one.
// There is no raw AMQP 1.0 peer: Debian's ActiveMQ has no AMQP 1.0
// transport (see package activemq).
func activeMQSuite() Suite {
	return BrokerSuite{
		ID: "activemq",
		Systems: func() []System {
			return []System{
				courierActiveMQ("courier-activemq", nil),
				courierActiveMQ("courier-activemq-concurrent", []broker.SubscribeOption{broker.WithConcurrentDelivery(activemq.DefaultPrefetch)}),
				courierAMQP("courier-amqp-classic", amqp.ClassicQueue),
			}
		},
		FullMessages:  20_000,
		QuickMessages: 1_000,
		Rounds:        1,
	}
}

// courierActiveMQ is Courier's ActiveMQ broker on a channel and subscriber
// id of its own (ActiveMQ deletes the queue once it is empty and
// unconsumed, with the tests' configuration).
func courierActiveMQ(label string, opts []broker.SubscribeOption) System {
	return funcSystem{name: label, probe: probeActiveMQ, start: func(ctx context.Context, consumers int, deliver func([]byte)) (Session, error) {
		sys := CourierBroker{Label: label, Channel: uniqueName("bench.events"), Subscriber: uniqueName("bench-consumer"), SubscribeOptions: opts,
			Open: func(ctx context.Context) (brokerCloser, error) {
				b, err := activemq.Open(ctx, activeMQURL(), activemq.WithLogger(quietLogger))
				if err != nil {
					return brokerCloser{}, err
				}
				return brokerCloser{Broker: b}, nil
			}}
		return sys.Start(ctx, consumers, deliver)
	}}
}
