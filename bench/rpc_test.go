package bench

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// benchContext bounds a sub-benchmark, so that a stuck server fails it
// instead of hanging the run.
func benchContext(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	b.Cleanup(cancel)
	return ctx
}

// reportPair reports an interleaved pair's medians, the added p50 and the
// allocations of each side.
func reportPair(b *testing.B, sides [2]pairSide, names [2]string) {
	for k, s := range sides {
		b.ReportMetric(float64(s.P50.Nanoseconds()), "p50-"+names[k]+"-ns")
		b.ReportMetric(float64(s.P99.Nanoseconds()), "p99-"+names[k]+"-ns")
		b.ReportMetric(s.AllocsPerCall(), "allocs-"+names[k]+"/call")
	}
	b.ReportMetric(float64((sides[1].P50 - sides[0].P50).Nanoseconds()), "p50-added-ns")
	b.ReportMetric(100*addedP50(sides[0], sides[1]), "p50-added-%")
}

// BenchmarkRPC runs the rpc suite's comparisons (see rpcSuiteT): for each
// mode (one caller, 16 callers) and protocol (HTTP, gRPC), a bare client,
// the bare client with the chain's timeout as its deadline, and the same
// client through the whole policy chain, calling one loopback server,
// interleaved call by call. Each iteration is a whole run of the
// mode's rounds; run it with -benchtime=1x.
func BenchmarkRPC(b *testing.B) {
	for _, mode := range rpcModes(quick()) {
		for _, pp := range rpcPairs() {
			b.Run(fmt.Sprintf("mode=%s/proto=%s", mode.Name, pp.Proto), func(b *testing.B) {
				ctx := benchContext(b)
				p, err := pp.New(mode.Cfg.Concurrency)
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				var sides []pairSide
				for b.Loop() {
					if sides, err = runInterleaved(ctx, mode.Cfg, p.Calls[:]); err != nil {
						b.Fatal(err)
					}
				}
				reportPair(b, [2]pairSide{sides[rpcBare], sides[rpcChained]}, [2]string{"bare", "policies"})
				b.ReportMetric(100*addedP50(sides[rpcDeadline], sides[rpcChained]), "p50-added-over-deadline-%")
			})
		}
	}
}

// BenchmarkRPCRejection is a call refused by an open breaker or a full
// bulkhead, through the chain alone, httpx's transport and grpcx's unary
// interceptor: no network call.
func BenchmarkRPCRejection(b *testing.B) {
	for _, r := range rpcRejections() {
		b.Run(fmt.Sprintf("system=%s/mode=%s", r.System, r.Mode), func(b *testing.B) {
			op, err := r.New()
			if err != nil {
				b.Fatal(err)
			}
			if !op() { // the first call creates the breaker of its key
				b.Fatal("the call was not refused")
			}
			b.ReportAllocs()
			for b.Loop() {
				if !op() {
					b.Fatal("the call was not refused")
				}
			}
		})
	}
}
