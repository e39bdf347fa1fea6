// Package metrics exports the events of resilience policies as Prometheus
// metrics. It is a separate package so that resilience itself does not
// depend on the Prometheus client.
//
// Metrics, all labelled by chain:
//
//	courier_resilience_breaker_state{chain,key}          0 closed, 1 open, 2 half-open
//	courier_resilience_breaker_transitions_total{chain,key,to}
//	courier_resilience_rejections_total{chain,reason}    reason: breaker_open, bulkhead_full
//	courier_resilience_retries_total{chain}
//	courier_resilience_timeouts_total{chain}
//	courier_resilience_fallbacks_total{chain}
package metrics

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/courier-go/courier/resilience"
)

// Observer is a resilience.Observer that updates Prometheus metrics. It is
// safe for concurrent use.
type Observer struct {
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	rejections  *prometheus.CounterVec
	retries     *prometheus.CounterVec
	timeouts    *prometheus.CounterVec
	fallbacks   *prometheus.CounterVec
}

var _ resilience.Observer = (*Observer)(nil)

// NewObserver creates the metrics and registers them with reg.
func NewObserver(reg prometheus.Registerer) (*Observer, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil registerer")
	}
	o := &Observer{
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "courier_resilience_breaker_state",
			Help: "Circuit breaker state: 0 closed, 1 open, 2 half-open."}, []string{"chain", "key"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_resilience_breaker_transitions_total",
			Help: "Circuit breaker transitions by new state."}, []string{"chain", "key", "to"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_resilience_rejections_total",
			Help: "Calls refused without a network call, by reason."}, []string{"chain", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_resilience_retries_total",
			Help: "Retried attempts."}, []string{"chain"}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_resilience_timeouts_total",
			Help: "Attempts cut short by the timeout."}, []string{"chain"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "courier_resilience_fallbacks_total",
			Help: "Failures replaced by a fallback."}, []string{"chain"}),
	}
	for _, c := range []prometheus.Collector{o.state, o.transitions, o.rejections, o.retries, o.timeouts, o.fallbacks} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return o, nil
}

// BreakerStateChanged sets the state gauge and counts the transition.
func (o *Observer) BreakerStateChanged(chain, key string, _, to resilience.State) {
	o.state.WithLabelValues(chain, key).Set(float64(to))
	o.transitions.WithLabelValues(chain, key, to.String()).Inc()
}

// Rejected counts a rejection by reason.
func (o *Observer) Rejected(chain, _ string, reason error) {
	r := "bulkhead_full"
	if reason == resilience.ErrBreakerOpen {
		r = "breaker_open"
	}
	o.rejections.WithLabelValues(chain, r).Inc()
}

// Retrying counts a retry.
func (o *Observer) Retrying(chain string, _ int, _ time.Duration, _ error) {
	o.retries.WithLabelValues(chain).Inc()
}

// TimedOut counts a timeout.
func (o *Observer) TimedOut(chain string) { o.timeouts.WithLabelValues(chain).Inc() }

// FellBack counts a fallback.
func (o *Observer) FellBack(chain string, _ error) { o.fallbacks.WithLabelValues(chain).Inc() }
