package memory_test

import (
	"testing"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokertest"
	"github.com/courier-go/courier/broker/memory"
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
	})
}
