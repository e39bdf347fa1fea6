package bench

import (
	"testing"
)

// BenchmarkFailover measures, for each registry with its default settings,
// the time from an instance's kill (its registration stops heartbeating,
// its server closes) to the last request an httplb client routed to it
// (see measureFailover). Each iteration starts the registry and measures
// one failover; run it with -benchtime=1x.
func BenchmarkFailover(b *testing.B) {
	_, quiet := failoverRounds(quick())
	for _, fb := range failoverBackends() {
		b.Run("system="+fb.Name, func(b *testing.B) {
			ctx := benchContext(b)
			var times []float64
			for b.Loop() {
				r, err := runFailover(ctx, fb, 1, quiet)
				if err != nil {
					b.Fatal(err)
				}
				times = append(times, float64(r.Max().Milliseconds()))
			}
			b.ReportMetric(medianOf(times), "failover-ms")
			b.ReportMetric(float64(fb.Bound.Milliseconds()), "bound-ms")
		})
	}
}

// BenchmarkRouterOverhead compares direct loopback calls to an instance
// with calls through discovery/router, interleaved call by call, and
// reports both medians and the router's added p50. Each iteration is a
// whole run; run it with -benchtime=1x.
func BenchmarkRouterOverhead(b *testing.B) {
	ctx := benchContext(b)
	calls, stop, err := routerPair()
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	var sides [2]pairSide
	for b.Loop() {
		if sides, err = runPair(ctx, routerConfig(quick()), calls); err != nil {
			b.Fatal(err)
		}
	}
	reportPair(b, sides, [2]string{"direct", "routed"})
}
