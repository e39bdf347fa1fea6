package metrics_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/resilience/metrics"
)

func TestObserverExportsBreakerAndRejections(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	obs, err := metrics.NewObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := resilience.NewChain(resilience.WithName("orders"), resilience.WithObserver(obs),
		resilience.WithLogger(slog.New(slog.DiscardHandler)),
		resilience.WithCircuitBreaker(resilience.FailureCount(2, 2), resilience.OpenDelay(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	e := resilience.Wrap(c, resilience.Spec[string, string]{Key: func(s string) string { return s }},
		func(context.Context, string) (string, error) { return "", errors.New("refused") })
	for range 4 {
		_, _ = e(context.Background(), "orders-1:8080")
	}
	want := `
# HELP courier_resilience_breaker_state Circuit breaker state: 0 closed, 1 open, 2 half-open.
# TYPE courier_resilience_breaker_state gauge
courier_resilience_breaker_state{chain="orders",key="orders-1:8080"} 1
# HELP courier_resilience_rejections_total Calls refused without a network call, by reason.
# TYPE courier_resilience_rejections_total counter
courier_resilience_rejections_total{chain="orders",reason="breaker_open"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"courier_resilience_breaker_state", "courier_resilience_rejections_total"); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.NewObserver(reg); err == nil {
		t.Fatal("registering twice succeeded")
	}
}
