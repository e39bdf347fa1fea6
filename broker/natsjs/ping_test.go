package natsjs_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/courier-go/courier/broker/natsjs"
	"github.com/courier-go/courier/broker/natsjs/embedded"
	"github.com/courier-go/courier/internal/testnet"
)

// throughProxy starts an embedded server on a port and opens a Broker on
// it through a proxy that can lose what passes, closed when the test ends.
func throughProxy(t *testing.T) (*embedded.Server, *natsjs.Broker, *testnet.Proxy) {
	t.Helper()
	e := startEmbedded(t, t.TempDir(), embedded.WithListenPort(0))
	u, err := url.Parse(e.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := testnet.NewProxy(t, u.Host)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := natsjs.Open(ctx, "nats://"+proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return e, b, proxy
}

// TestPing: Ping answers while the server can be reached, fails within its
// context while it cannot, and answers again once it can.
func TestPing(t *testing.T) {
	_, b, proxy := throughProxy(t)
	testnet.CheckPing(t, b.Ping, proxy)
}
