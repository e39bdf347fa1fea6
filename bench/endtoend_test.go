package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

var warmupFlag = flag.Int("warmup", 1, "unmeasured runs of each sub-benchmark before the measured ones")

var msgsFlag = flag.Int("msgs", 0, "messages per workload run (default 200000; 20000 with -short, under -race or with COURIER_BENCH_QUICK=1; COURIER_BENCH_MSGS also sets it)")

// payloadSizes are the payload sizes the benchmark compares.
var payloadSizes = []int{16, 64, 256}

// quick reports whether the quick mode is on: -short, the race detector, or
// COURIER_BENCH_QUICK=1.
func quick() bool {
	return testing.Short() || raceEnabled || os.Getenv("COURIER_BENCH_QUICK") == "1"
}

// benchMessages is the fixed message count of each workload run.
func benchMessages(tb testing.TB) int {
	if *msgsFlag > 0 {
		return *msgsFlag
	}
	if v := os.Getenv("COURIER_BENCH_MSGS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			tb.Fatalf("COURIER_BENCH_MSGS=%q: want a positive integer", v)
		}
		return n
	}
	if quick() {
		return QuickMessages
	}
	return DefaultMessages
}

// BenchmarkEndToEnd runs the workload (see Run) once per b.N iteration with
// a fixed message count, so that every iteration measures the same stream
// rather than a size picked by the benchmark framework; run it with
// -benchtime=1x and repeat the command (or use -count) for repetitions.
// Each sub-benchmark first makes -warmup unmeasured runs. ns/op is the time
// of one whole run, set-up and teardown included; the reported metrics cover
// only the stream itself and are aggregated over the iterations: rates from
// total messages and total time, latencies averaged, peaks the highest.
//
// The sub-benchmarks are named system=<name>/size=<payload bytes>. For each
// size every system runs in turn, so the systems compared at one size run
// close together in time.
func BenchmarkEndToEnd(b *testing.B) {
	n := benchMessages(b)
	for _, size := range payloadSizes {
		for _, sys := range Systems() {
			b.Run(fmt.Sprintf("system=%s/size=%d", sys.Name(), size), func(b *testing.B) {
				benchWorkload(b, sys, Config{Messages: n, PayloadSize: size}, *warmupFlag)
			})
		}
	}
}

// benchWorkload runs the workload on sys once per iteration, after warmup
// unmeasured runs, and reports the runs' metrics.
func benchWorkload(b *testing.B, sys System, cfg Config, warmup int) {
	// The first run in a process pays for growing the heap (page faults
	// on fresh memory) and the previous sub-benchmark left the heap shaped
	// for another system; a warm-up run gives every system the same start.
	for range warmup {
		if _, err := Run(context.Background(), sys, cfg); err != nil {
			b.Fatal(err)
		}
	}
	var results []Result
	for b.Loop() {
		r, err := Run(context.Background(), sys, cfg)
		if err != nil {
			b.Fatal(err)
		}
		results = append(results, r)
	}
	report(b, results)
}

// report sums up the runs of one sub-benchmark as custom metrics.
func report(b *testing.B, rs []Result) {
	if len(rs) == 0 {
		return
	}
	var (
		msgs                 int
		e2e, pub, p50, p99   time.Duration
		mallocs, allocBytes  uint64
		peakHeap, peakStacks uint64
		peakG                int
		otherCPU             = -1.0
	)
	for _, r := range rs {
		msgs += r.Messages
		e2e += r.EndToEnd
		pub += r.Publish
		p50 += r.P50
		p99 += r.P99
		mallocs += r.Mallocs
		allocBytes += r.AllocBytes
		peakHeap = max(peakHeap, r.PeakHeap)
		peakStacks = max(peakStacks, r.PeakStacks)
		peakG = max(peakG, r.PeakGoroutines)
		otherCPU = max(otherCPU, r.OtherCPU)
	}
	runs := time.Duration(len(rs))
	const mib = 1 << 20
	b.ReportMetric(float64(msgs)/e2e.Seconds(), "msgs/s")
	b.ReportMetric(float64(msgs)/pub.Seconds(), "pub-msgs/s")
	b.ReportMetric(float64(p50/runs), "p50-ns")
	b.ReportMetric(float64(p99/runs), "p99-ns")
	b.ReportMetric(float64(mallocs)/float64(msgs), "allocs/msg")
	b.ReportMetric(float64(allocBytes)/float64(msgs), "B/msg")
	b.ReportMetric(float64(peakHeap)/mib, "peak-heap-MiB")
	b.ReportMetric(float64(peakStacks)/mib, "peak-stack-MiB")
	b.ReportMetric(float64(peakG), "peak-goroutines")
	// Noise: CPUs the rest of the machine used meanwhile (-1: unknown).
	b.ReportMetric(otherCPU, "other-cpus")
}

// BenchmarkBrokers runs the systems of the broker suites (NATS, Kafka,
// RabbitMQ, ActiveMQ, direct; see Suites), one sub-benchmark per suite, system and
// payload size: suite=<name>/system=<name>/size=<bytes>. The command
// cmd/courier-bench runs the same suites and prints their tables. A system
// whose server is unreachable is skipped, except under CI.
func BenchmarkBrokers(b *testing.B) {
	o := Options{Quick: quick(), Messages: *msgsFlag}
	for _, s := range Suites() {
		bs, ok := s.(BrokerSuite)
		if d, isDirect := s.(directSuite); isDirect {
			bs, ok = d.brokers(), true
		}
		if !ok || bs.ID == "memory" {
			continue
		}
		for _, size := range o.sizes() {
			for _, sys := range bs.Systems() {
				b.Run(fmt.Sprintf("suite=%s/system=%s/size=%d", bs.ID, sys.Name(), size), func(b *testing.B) {
					skip, err := probe(context.Background(), sys, o)
					if err != nil {
						b.Fatal(err)
					}
					if skip != "" {
						b.Skip(skip)
					}
					benchWorkload(b, sys, bs.Config(o, size), o.warmup())
				})
			}
		}
	}
}

// BenchmarkOutbox runs the outbox suite's systems (see OutboxSuite) on
// PostgreSQL: phase=sustained for every system, phase=paced (1,000
// messages a second) for those with a relay or subscriber. It is skipped
// when PostgreSQL is unreachable, except under CI.
func BenchmarkOutbox(b *testing.B) {
	o := Options{Quick: quick(), Messages: *msgsFlag}
	sustained, paced := OutboxSuite{}.Configs(o)
	for i, sys := range OutboxSystems() {
		for _, phase := range []struct {
			name string
			cfg  Config
		}{{"sustained", sustained}, {"paced", paced}} {
			if phase.name == "paced" && i < 2 {
				continue
			}
			b.Run(fmt.Sprintf("phase=%s/system=%s", phase.name, sys.Name()), func(b *testing.B) {
				skip, err := probe(context.Background(), sys, o)
				if err != nil {
					b.Fatal(err)
				}
				if skip != "" {
					b.Skip(skip)
				}
				benchWorkload(b, sys, phase.cfg, o.warmup())
			})
		}
	}
}
