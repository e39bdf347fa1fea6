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
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "courier_consumer_dead_lettered_total", "courier_consumer_discarded_total"); err != nil {
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

// A handler that fails once and then succeeds is counted as one failure,
// one retry and one message handled, with two calls timed.
func TestObserverCountsHandlerCalls(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := metrics.NewObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	h := broker.HandlerFunc(func(context.Context, *message.Message) error {
		calls++
		if calls == 1 {
			return errors.New("not yet")
		}
		time.Sleep(2 * time.Millisecond)
		return nil
	})
	cfg, err := adapter.NewSubscribeConfig("svc", []string{"orders"}, h, broker.WithObserver(obs),
		broker.WithLogger(slog.New(slog.DiscardHandler)), broker.WithBackoff(broker.ConstantBackoff(time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	if err := adapter.NewProcessor(cfg, mustMemory(t)).Process(context.Background(), nil, "orders", 0, 0, message.New([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP courier_consumer_failed_total Calls of the handler that failed.
# TYPE courier_consumer_failed_total counter
courier_consumer_failed_total{channel="orders",subscriber_id="svc"} 1
# HELP courier_consumer_handled_total Messages the handler handled.
# TYPE courier_consumer_handled_total counter
courier_consumer_handled_total{channel="orders",subscriber_id="svc"} 1
# HELP courier_consumer_retries_total Failed calls of the handler after which it is called again for the message.
# TYPE courier_consumer_retries_total counter
courier_consumer_retries_total{channel="orders",subscriber_id="svc"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "courier_consumer_failed_total", "courier_consumer_handled_total", "courier_consumer_retries_total"); err != nil {
		t.Error(err)
	}
	families, _ := reg.Gather()
	found := false
	for _, f := range families {
		if f.GetName() == "courier_consumer_handler_duration_seconds" {
			found = true
			h := f.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 2 || h.GetSampleSum() < 0.002 {
				t.Errorf("durations: %d calls, %gs in all; want 2 calls, at least 2ms", h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
	if !found {
		t.Error("no handler durations")
	}
}
