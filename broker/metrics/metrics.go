// Package metrics exports what subscriptions do with their messages as
// Prometheus metrics: each call of the handler (the Observer is a
// broker.HandlerObserver), its duration, its retries, and the messages
// given up on. It is a separate package so that the broker port itself
// does not depend on the Prometheus client.
//
// Metrics (see the README's table of every metric):
//
//	courier_consumer_handled_total{subscriber_id,channel}
//	    messages the handler handled (returned nil for)
//	courier_consumer_failed_total{subscriber_id,channel}
//	    calls of the handler that failed (an error, a panic, a timeout)
//	courier_consumer_retries_total{subscriber_id,channel}
//	    failed calls after which the handler is called again
//	courier_consumer_handler_duration_seconds{subscriber_id,channel}
//	    histogram of the time each call of the handler took
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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/courier-go/courier/broker"
)

// Observer is a broker.Observer that counts dead-lettered and discarded
// messages. It is safe for concurrent use; one Observer serves any number
// of subscriptions (pass it to each with broker.WithObserver).
type Observer struct {
	deadLettered *prometheus.CounterVec
	discarded    *prometheus.CounterVec
	handled      *prometheus.CounterVec
	failed       *prometheus.CounterVec
	retries      *prometheus.CounterVec
	duration     *prometheus.HistogramVec
}

var _ broker.HandlerObserver = (*Observer)(nil)

// DurationBuckets are the buckets of
// courier_consumer_handler_duration_seconds: from half a millisecond to a
// minute.
var DurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

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
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_consumer_handled_total",
			Help: "Messages the handler handled."}, []string{"subscriber_id", "channel"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_consumer_failed_total",
			Help: "Calls of the handler that failed."}, []string{"subscriber_id", "channel"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_consumer_retries_total",
			Help: "Failed calls of the handler after which it is called again for the message."}, []string{"subscriber_id", "channel"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "courier_consumer_handler_duration_seconds",
			Help: "Time each call of the handler took.", Buckets: DurationBuckets}, []string{"subscriber_id", "channel"}),
	}
	for _, c := range []prometheus.Collector{o.deadLettered, o.discarded, o.handled, o.failed, o.retries, o.duration} {
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

// Handled counts a call of the handler and observes its duration.
func (o *Observer) Handled(_ context.Context, info broker.DeliveryInfo, _ string, took time.Duration, err error, retry bool) {
	o.duration.WithLabelValues(info.SubscriberID, info.Channel).Observe(took.Seconds())
	if err == nil {
		o.handled.WithLabelValues(info.SubscriberID, info.Channel).Inc()
		return
	}
	o.failed.WithLabelValues(info.SubscriberID, info.Channel).Inc()
	if retry {
		o.retries.WithLabelValues(info.SubscriberID, info.Channel).Inc()
	}
}
