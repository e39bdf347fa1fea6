package memory_test

import (
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokertest"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/observe/tracing"
)

// A traced broker keeps every promise of the broker port: the memory
// broker behind tracing (observe/tracing) passes the conformance suite,
// with every message in a span.
func TestTracedConformance(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tr := tracing.New(tracing.WithTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))))
	var mu sync.Mutex
	inner := map[broker.Broker]*memory.Broker{}
	brokertest.Run(t, brokertest.Suite{
		New: func(t *testing.T) broker.Broker {
			b, err := memory.New()
			if err != nil {
				t.Fatal(err)
			}
			traced := tr.Broker(b)
			mu.Lock()
			inner[traced] = b
			mu.Unlock()
			return traced
		},
		Features: brokertest.Features{Resume: true},
		Raw: func(_ *testing.T, b broker.Broker, channel, key string, headers message.Headers, payload []byte) error {
			mu.Lock()
			m := inner[b]
			mu.Unlock()
			return memory.PublishRaw(m, channel, key, headers, payload)
		},
	})
	if len(rec.Ended()) == 0 {
		t.Error("no span recorded")
	}
}
