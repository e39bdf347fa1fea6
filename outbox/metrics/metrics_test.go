package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/metrics"
	"github.com/courier-go/courier/sqldb"
)

func TestRelayMetrics(t *testing.T) {
	db := testdb.SQLite(t)
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	got := relaytest.Collect(t, b, "orders")
	reg := prometheus.NewRegistry()
	m, err := metrics.NewRelay(reg, "orders", metrics.SourcePoll)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "courier_relay_published_total"); err != nil || n != 0 {
		t.Errorf("before Track: %d published series, %v; want none", n, err)
	}
	r, err := outbox.NewRelay(db.DB, sqldb.SQLite, b, outbox.WithObserver(m), outbox.WithLogger(relaytest.Quiet()),
		outbox.WithPollInterval(10*time.Millisecond), outbox.WithLeaseTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	m.Track(r)
	relaytest.Run(t, r)
	txs := relaytest.WriteTransactions(t, db.DB, outbox.NewWriter(sqldb.SQLite), 20)
	txs.Check(t, got)
	relaytest.Eventually(t, "published_total to count every message", func() bool {
		return testutil.ToFloat64(collectorOf(reg, "courier_relay_published_total")) == float64(got.Count())
	})
	want := `
# HELP courier_relay_leader 1 while this relay holds the lease.
# TYPE courier_relay_leader gauge
courier_relay_leader{relay="orders",source="poll"} 1
# HELP courier_relay_dead_lettered_total Rows sent to the dead-letter channel.
# TYPE courier_relay_dead_lettered_total counter
courier_relay_dead_lettered_total{relay="orders",source="poll"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "courier_relay_leader", "courier_relay_dead_lettered_total"); err != nil {
		t.Error(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		seen[f.GetName()] = true
		switch f.GetName() {
		case "courier_relay_publish_latency_seconds":
			h := f.GetMetric()[0].GetHistogram()
			if int(h.GetSampleCount()) != got.Count() || h.GetSampleSum() <= 0 || h.GetSampleSum() > float64(got.Count())*30 {
				t.Errorf("latency: %d observations summing to %gs, want %d positive ones", h.GetSampleCount(), h.GetSampleSum(), got.Count())
			}
		case "courier_relay_batch_rows":
			h := f.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() == 0 || int(h.GetSampleSum()) < got.Count() {
				t.Errorf("batches: %d reads of %g rows, want at least %d rows", h.GetSampleCount(), h.GetSampleSum(), got.Count())
			}
		}
	}
	for _, name := range []string{"courier_relay_publish_latency_seconds", "courier_relay_batch_rows", "courier_relay_lag_seconds",
		"courier_relay_errors_total", "courier_relay_publish_errors_total", "courier_relay_publish_failing"} {
		if !seen[name] {
			t.Errorf("no %s", name)
		}
	}
	if _, err := metrics.NewRelay(reg, "orders", metrics.SourcePoll); err == nil {
		t.Error("registering the same relay's metrics twice succeeded")
	}
}

// collectorOf returns a collector of the one series of the named metric
// that reg gathers.
func collectorOf(reg *prometheus.Registry, name string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "gathered"})
	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			if c := f.GetMetric()[0].GetCounter(); c != nil {
				g.Set(c.GetValue())
			}
		}
	}
	return g
}
