package memory_test

import (
	"context"
	"errors"
	"testing"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokertest"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/message"
)

func TestConformance(t *testing.T) {
	brokertest.Run(t, brokertest.Suite{
		New: func(t *testing.T) broker.Broker {
			b, err := memory.New()
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Features: brokertest.Features{Resume: true},
		Raw: func(_ *testing.T, b broker.Broker, channel, key string, headers message.Headers, payload []byte) error {
			return memory.PublishRaw(b.(*memory.Broker), channel, key, headers, payload)
		},
	})
}

func TestPing(t *testing.T) {
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping of an open broker: %v", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Ping of a closed broker = %v, want broker.ErrClosed", err)
	}
}
