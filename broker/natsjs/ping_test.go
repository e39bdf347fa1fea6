package natsjs_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/courier-go/courier/broker/natsjs"
	"github.com/courier-go/courier/internal/testnet"
)

// TestPing: Ping answers while the server can be reached, fails within its
// context while it cannot, and answers again once it can.
func TestPing(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), natsjs.WithListenPort(0))
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
	testnet.CheckPing(t, b.Ping, proxy)
}
