package bench

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkCall measures blocking request/reply over messaging (see
// RunCalls) in two modes:
//
//   - mode=paced-1000: 1,000 calls a second for 5 s (0.5 s in quick
//     mode), each call started on schedule; the latencies are what a
//     service making calls at that rate sees;
//   - mode=saturated: 64 goroutines call back to back, 20,000 calls (2,000
//     in quick mode); calls/s is the system's maximum call rate.
//
// Run it with -benchtime=1x; each iteration is one whole run.
func BenchmarkCall(b *testing.B) {
	paced := CallConfig{Rate: 1000, Duration: 5 * time.Second}
	saturated := CallConfig{Calls: 20_000, Concurrency: 64}
	if quick() {
		paced.Duration = 500 * time.Millisecond
		saturated.Calls = 2_000
	}
	for _, mode := range []struct {
		name string
		cfg  CallConfig
	}{{"paced-1000", paced}, {"saturated", saturated}} {
		systems, notes := callSystemsFor(mode.cfg)
		for _, n := range notes {
			b.Logf("mode=%s: not run: %s", mode.name, n)
		}
		for _, sys := range systems {
			b.Run(fmt.Sprintf("mode=%s/system=%s", mode.name, sys.Name()), func(b *testing.B) {
				var rs []CallResult
				for b.Loop() {
					r, err := RunCalls(context.Background(), sys, mode.cfg)
					if err != nil {
						b.Fatal(err)
					}
					rs = append(rs, r)
				}
				reportCalls(b, rs)
			})
		}
	}
}

func reportCalls(b *testing.B, rs []CallResult) {
	var (
		calls            int
		elapsed, p50, p9 time.Duration
		worst            time.Duration
		mallocs          uint64
		lost             int
	)
	for _, r := range rs {
		calls += r.Calls
		elapsed += r.Elapsed
		p50 += r.P50
		p9 += r.P99
		worst = max(worst, r.Max)
		mallocs += r.Mallocs
		lost += r.Lost
	}
	n := time.Duration(len(rs))
	b.ReportMetric(float64(calls-lost)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(p50/n)/1e6, "p50-ms")
	b.ReportMetric(float64(p9/n)/1e6, "p99-ms")
	b.ReportMetric(float64(worst)/1e6, "max-ms")
	b.ReportMetric(float64(mallocs)/float64(calls), "allocs/call")
	b.ReportMetric(float64(lost), "lost-calls")
}

// BenchmarkEventDispatch runs the end-to-end workload (Run: 64 publishers,
// 4 consumer instances, 64-byte payloads) with typed domain events: each
// message is an event encoded as JSON, published through the event API and
// dispatched by event type to a typed handler. The metrics are those of
// BenchmarkEndToEnd.
func BenchmarkEventDispatch(b *testing.B) {
	n := benchMessages(b)
	for _, sys := range eventSystems() {
		b.Run("system="+sys.Name(), func(b *testing.B) {
			benchWorkload(b, sys, Config{Messages: n, PayloadSize: DefaultPayloadSize}, *warmupFlag)
		})
	}
}
