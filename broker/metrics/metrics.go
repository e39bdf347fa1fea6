// Package metrics exports what subscriptions do with the messages they
// give up on as Prometheus metrics. It is a separate package so that the
// broker port itself does not depend on the Prometheus client.
//
// Metrics:
//
//	courier_consumer_dead_lettered_total{subscriber_id,channel,envelope}
//	    messages sent to the dead-letter channel; envelope is original,
//	    bounded or minimal (see broker.EnvelopeOriginal and the others)
//	courier_consumer_discarded_total{subscriber_id,channel}
//	    messages acknowledged without being handled or dead-lettered,
//	    because the broker refused even their minimal dead-letter
//	    envelope: each one is a message lost, and worth an alert
package metrics

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/courier-go/courier/broker"
)

// Observer is a broker.Observer that counts dead-lettered and discarded
// messages. It is safe for concurrent use; one Observer serves any number
// of subscriptions (pass it to each with broker.WithObserver).
type Observer struct {
	deadLettered *prometheus.CounterVec
	discarded    *prometheus.CounterVec
}

var _ broker.Observer = (*Observer)(nil)

// NewObserver creates the metrics and registers them with reg.
func NewObserver(reg prometheus.Registerer) (*Observer, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil registerer")
	}
	o := &Observer{
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_consumer_dead_lettered_total",
			Help: "Messages sent to the dead-letter channel, by the envelope they went in."}, []string{"subscriber_id", "channel", "envelope"}),
		discarded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_consumer_discarded_total",
			Help: "Messages acknowledged without being handled or dead-lettered: the broker refused even their minimal dead-letter envelope."}, []string{"subscriber_id", "channel"}),
	}
	for _, c := range []prometheus.Collector{o.deadLettered, o.discarded} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return o, nil
}

// DeadLettered counts a dead-lettered message.
func (o *Observer) DeadLettered(_ context.Context, info broker.DeliveryInfo, _, envelope string) {
	o.deadLettered.WithLabelValues(info.SubscriberID, info.Channel, envelope).Inc()
}

// Discarded counts a discarded message.
func (o *Observer) Discarded(_ context.Context, info broker.DeliveryInfo, _ string, _ error) {
	o.discarded.WithLabelValues(info.SubscriberID, info.Channel).Inc()
}
