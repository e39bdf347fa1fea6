package metrics_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/broker/metrics"
	"github.com/courier-go/courier/message"
)

// One Observer counts the handler's calls, failures, retries, dead
// letters and discards of every subscription it is given to.
func ExampleNewObserver() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	obs, err := metrics.NewObserver(reg)
	if err != nil {
		log.Fatal(err)
	}
	b, err := memory.New()
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close(ctx)

	dead := make(chan *message.Message, 1)
	dlq, err := b.Subscribe(ctx, "audit", []string{"kitchen.dead-letter"}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		dead <- m
		return nil
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer dlq.Close(ctx)
	sub, err := b.Subscribe(ctx, "kitchen", []string{"orders"}, broker.HandlerFunc(func(context.Context, *message.Message) error {
		return broker.Permanent(fmt.Errorf("unknown order type"))
	}), broker.WithObserver(obs))
	if err != nil {
		log.Fatal(err)
	}

	if err := b.Send(ctx, "orders", message.New([]byte(`{"type":"?"}`))); err != nil {
		log.Fatal(err)
	}
	m := <-dead
	fmt.Println(m.Header(message.HeaderDeadLetterReason))
	// Close waits for the handler's delivery, counted once it is done.
	if err := sub.Close(ctx); err != nil {
		log.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range families {
		for _, metric := range f.GetMetric() {
			if h := metric.GetHistogram(); h != nil {
				fmt.Println(f.GetName(), "count", h.GetSampleCount())
				continue
			}
			fmt.Println(f.GetName(), metric.GetCounter().GetValue())
		}
	}
	// Output:
	// unknown order type
	// courier_consumer_dead_lettered_total 1
	// courier_consumer_failed_total 1
	// courier_consumer_handler_duration_seconds count 1
}
