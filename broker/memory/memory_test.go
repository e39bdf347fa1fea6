package memory_test

import (
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
