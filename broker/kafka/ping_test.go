package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestPing: Ping answers while the cluster runs and fails within its
// context once no broker of it can be reached.
func TestPing(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	b := open(t, c)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	ping := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return b.Ping(ctx)
	}
	if err := ping(); err != nil {
		t.Fatalf("Ping while the cluster runs: %v", err)
	}
	c.Close()
	start := time.Now()
	if err := ping(); err == nil {
		t.Fatal("Ping succeeded with the cluster gone")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Ping took %v to fail, beyond its 1s context", took)
	}
}
