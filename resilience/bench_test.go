package resilience_test

import (
	"context"
	"testing"
	"time"

	"github.com/courier-go/courier/resilience"
)

func benchSpec() resilience.Spec[string, string] {
	return resilience.Spec[string, string]{Key: func(string) string { return "k" }, Idempotent: func(string) bool { return true }}
}

// BenchmarkChain is the cost of the whole policy chain around a call that
// does nothing.
func BenchmarkChain(b *testing.B) {
	c := mustChain(b, resilience.WithTimeout(time.Second), resilience.WithBulkhead(100),
		resilience.WithCircuitBreaker(), resilience.WithRetry())
	e := resilience.Wrap(c, benchSpec(), func(context.Context, string) (string, error) { return "", nil })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = e(ctx, "x")
	}
}

// BenchmarkRejectOpenBreaker is the cost of a call refused by an open
// breaker, behind retry and in front of bulkhead and timeout.
func BenchmarkRejectOpenBreaker(b *testing.B) {
	c := mustChain(b, resilience.WithTimeout(time.Second), resilience.WithBulkhead(100),
		resilience.WithCircuitBreaker(resilience.OpenDelay(time.Hour)), resilience.WithRetry())
	c.Breakers().Get("k").Open()
	e := resilience.Wrap(c, benchSpec(), func(context.Context, string) (string, error) { return "", nil })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e(ctx, "x"); err != resilience.ErrBreakerOpen {
			b.Fatal(err)
		}
	}
}

// BenchmarkRejectFullBulkhead is the cost of a call refused by a full
// bulkhead.
func BenchmarkRejectFullBulkhead(b *testing.B) {
	c := mustChain(b, resilience.WithTimeout(time.Second), resilience.WithBulkhead(1),
		resilience.WithCircuitBreaker(), resilience.WithRetry())
	if err := c.Bulkhead().Acquire(); err != nil {
		b.Fatal(err)
	}
	e := resilience.Wrap(c, benchSpec(), func(context.Context, string) (string, error) { return "", nil })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e(ctx, "x"); err != resilience.ErrBulkheadFull {
			b.Fatal(err)
		}
	}
}

// BenchmarkBulkhead is a permit taken and returned by 16 goroutines at
// once: the bulkhead's cost per call under contention.
func BenchmarkBulkhead(b *testing.B) {
	bh, err := resilience.NewBulkhead(100)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(8) // 16 goroutines on 2 CPUs
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if bh.Acquire() == nil {
				bh.Release()
			}
		}
	})
}
