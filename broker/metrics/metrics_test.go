package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/broker/metrics"
	"github.com/courier-go/courier/message"
)

// refusingProducer refuses every message as one it can never carry.
type refusingProducer struct{}

func (refusingProducer) Send(context.Context, string, ...*message.Message) error {
	return fmt.Errorf("refused: %w", message.ErrHeadersTooLarge)
}

func TestObserverCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := metrics.NewObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	fail := broker.HandlerFunc(func(context.Context, *message.Message) error { return broker.Permanent(errors.New("bad")) })
	quiet := broker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, dlq := range []broker.Producer{mustMemory(t), refusingProducer{}} {
		cfg, err := adapter.NewSubscribeConfig("svc", []string{"orders"}, fail, broker.WithObserver(obs), quiet)
		if err != nil {
			t.Fatal(err)
		}
		p := adapter.NewProcessor(cfg, dlq)
		if err := p.Process(context.Background(), nil, "orders", 0, 0, message.New([]byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP courier_consumer_dead_lettered_total Messages sent to the dead-letter channel, by the envelope they went in.
# TYPE courier_consumer_dead_lettered_total counter
courier_consumer_dead_lettered_total{channel="orders",envelope="original",subscriber_id="svc"} 1
# HELP courier_consumer_discarded_total Messages acknowledged without being handled or dead-lettered: the broker refused even their minimal dead-letter envelope.
# TYPE courier_consumer_discarded_total counter
courier_consumer_discarded_total{channel="orders",subscriber_id="svc"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if _, err := metrics.NewObserver(reg); err == nil {
		t.Error("registering the metrics twice succeeded")
	}
}

func mustMemory(t *testing.T) *memory.Broker {
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}
