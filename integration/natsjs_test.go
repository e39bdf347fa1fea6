package integration

import (
	"context"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/natsjs/embedded"
)

// newEmbeddedNATS starts an embedded NATS JetStream server in a fresh
// directory and returns a Broker on it; both stop when the test ends.
func newEmbeddedNATS(t *testing.T) broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := embedded.Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
	b, err := srv.Broker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInteractionStylesOverEmbeddedNATS(t *testing.T) { runStyles(t, newEmbeddedNATS) }
