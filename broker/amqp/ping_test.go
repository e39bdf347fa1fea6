package amqp_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/courier-go/courier/broker/amqp"
	"github.com/courier-go/courier/internal/testnet"
)

// TestPing: Ping answers while RabbitMQ can be reached, fails within its
// context while it cannot, and answers again once it can.
func TestPing(t *testing.T) {
	u, err := url.Parse(serverURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testnet.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	b := open(t, u.String(), amqp.WithReconnectBackoff(50*time.Millisecond, 500*time.Millisecond))
	testnet.CheckPing(t, b.Ping, proxy)
}
