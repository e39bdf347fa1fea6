// Package metrics exports an outbox relay's counters, lag, publish
// latency and batch sizes as Prometheus metrics, each labelled with the
// relay's name and its source (poll, pgcdc or mysqlcdc), so that several
// relays of a process, or of a fleet, stay apart. It is a separate
// package so that package outbox does not depend on the Prometheus
// client.
//
// Metrics (all labelled relay and source; see the README's table):
//
//	courier_relay_leader                      1 while this relay holds the lease
//	courier_relay_published_total             messages the broker confirmed
//	courier_relay_dead_lettered_total         rows sent to the dead-letter channel
//	courier_relay_errors_total                failed reads, publishes, confirmations and lease operations
//	courier_relay_publish_errors_total        Sends the broker refused or did not confirm
//	courier_relay_publish_failing             1 while publishing fails
//	courier_relay_lag_seconds                 age of the oldest row waiting (poll)
//	courier_relay_lag_bytes                   log not yet confirmed (pgcdc, mysqlcdc)
//	courier_relay_publish_latency_seconds     histogram: a row's commit to the broker's confirmation
//	courier_relay_batch_rows                  histogram: rows per read of the source
package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/courier-go/courier/outbox"
)

// Relay is an outbox.RelayObserver that measures one relay, and a
// collector of its counters and lag once Track names the relay. It is
// safe for concurrent use.
type Relay struct {
	labels  prometheus.Labels
	latency prometheus.Observer
	batch   prometheus.Observer
	relay   atomic.Pointer[outbox.Relay]
	descs   map[string]*prometheus.Desc
	lagName string
}

var _ outbox.RelayObserver = (*Relay)(nil)

// Sources, the values of the source label.
const (
	SourcePoll     = "poll"
	SourcePgCDC    = "pgcdc"
	SourceMySQLCDC = "mysqlcdc"
)

// LatencyBuckets are the buckets of courier_relay_publish_latency_seconds:
// from a millisecond to two minutes.
var LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// BatchBuckets are the buckets of courier_relay_batch_rows.
var BatchBuckets = []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000}

// NewRelay creates the metrics of the relay named relay, reading its rows
// from source, and registers them with reg. Give the result to the relay
// with outbox.WithObserver, then call Track with the relay.
func NewRelay(reg prometheus.Registerer, relay, source string) (*Relay, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil registerer")
	}
	labels := prometheus.Labels{"relay": relay, "source": source}
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "courier_relay_publish_latency_seconds",
		Help:    "Time from a row's commit to the broker's confirmation of its message.",
		Buckets: LatencyBuckets, ConstLabels: labels})
	batch := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "courier_relay_batch_rows",
		Help: "Rows per read of the relay's source.", Buckets: BatchBuckets, ConstLabels: labels})
	m := &Relay{labels: labels, latency: latency, batch: batch, lagName: "courier_relay_lag_seconds"}
	lagHelp := "Age of the oldest unpublished outbox row."
	if source != SourcePoll {
		m.lagName, lagHelp = "courier_relay_lag_bytes", "Transaction log the relay has not confirmed as published."
	}
	m.descs = map[string]*prometheus.Desc{}
	for name, help := range map[string]string{
		"courier_relay_leader":               "1 while this relay holds the lease.",
		"courier_relay_published_total":      "Messages published: confirmed by the broker.",
		"courier_relay_dead_lettered_total":  "Rows sent to the dead-letter channel.",
		"courier_relay_errors_total":         "Failed reads, publishes, confirmations and lease operations.",
		"courier_relay_publish_errors_total": "Sends the broker refused or did not confirm (each one destination's batch of messages).",
		"courier_relay_publish_failing":      "1 while publishing fails: every Send since the first failure was refused or not confirmed.",
		m.lagName:                            lagHelp,
	} {
		m.descs[name] = prometheus.NewDesc(name, help, nil, labels)
	}
	for _, c := range []prometheus.Collector{latency, batch, m} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// Track makes the collector read r's counters and lag.
func (m *Relay) Track(r *outbox.Relay) { m.relay.Store(r) }

// Read observes a batch size.
func (m *Relay) Read(rows int) { m.batch.Observe(float64(rows)) }

// Published observes each row's latency from its commit; rows whose
// commit time is unknown are not observed.
func (m *Relay) Published(_ string, committed []time.Time, confirmed time.Time) {
	for _, c := range committed {
		if !c.IsZero() {
			m.latency.Observe(max(confirmed.Sub(c), 0).Seconds())
		}
	}
}

// Describe sends the descriptions of the counters and gauges.
func (m *Relay) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs {
		ch <- d
	}
}

// Collect reads the tracked relay's counters and lag; nothing before
// Track.
func (m *Relay) Collect(ch chan<- prometheus.Metric) {
	r := m.relay.Load()
	if r == nil {
		return
	}
	s := r.Stats()
	counter := func(name string, v uint64) {
		ch <- prometheus.MustNewConstMetric(m.descs[name], prometheus.CounterValue, float64(v))
	}
	gauge := func(name string, v float64) {
		ch <- prometheus.MustNewConstMetric(m.descs[name], prometheus.GaugeValue, v)
	}
	gauge("courier_relay_leader", boolValue(s.Leader))
	counter("courier_relay_published_total", s.Published)
	counter("courier_relay_dead_lettered_total", s.DeadLettered)
	counter("courier_relay_errors_total", s.Errors)
	counter("courier_relay_publish_errors_total", s.PublishErrors)
	gauge("courier_relay_publish_failing", boolValue(!s.PublishFailingSince.IsZero()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if lag, err := r.Lag(ctx); err == nil {
		if m.lagName == "courier_relay_lag_bytes" {
			gauge(m.lagName, float64(lag.Bytes))
		} else {
			gauge(m.lagName, lag.Age.Seconds())
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
