// Package bench measures message brokers on one end-to-end workload: many
// goroutines publish keyed messages to one channel while several competing
// consumer instances of one subscriber acknowledge them. The workload (Run)
// knows nothing about any broker; each broker under test is a System
// adapter, so more brokers can be added without touching the measurement.
//
// Suites group the systems compared in one run: Courier's memory broker
// and Watermill's GoChannel; Courier on embedded NATS, Kafka (kfake) and
// RabbitMQ beside the raw clients and Watermill's adapters; the outbox
// relays on PostgreSQL beside watermill-sql; request/reply and event
// dispatch. The courier-bench command (cmd/courier-bench) runs them and
// prints Markdown or CSV, or rewrites the tables of BENCHMARKS.md; the go
// test benchmarks of this package run the same systems. See BENCHMARKS.md
// at the repository root for the results and how to read them.
package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	DefaultMessages    = 200_000
	QuickMessages      = 20_000
	DefaultPayloadSize = 64
	DefaultPublishers  = 64
	DefaultConsumers   = 4
	DefaultKeys        = 1000
	DefaultTimeout     = 2 * time.Minute
	DefaultSampleEvery = 2 * time.Millisecond
)

// HeaderBytes is the part of every payload that the workload uses: the
// send time (8 bytes) and the message's sequence number (8 bytes), both
// little endian. The payload must be at least this long.
const HeaderBytes = 16

// Config describes one run of the workload. A zero field takes its default.
type Config struct {
	// Messages is how many messages are published (and must be consumed).
	Messages int
	// PayloadSize is each payload's length in bytes, at least HeaderBytes.
	PayloadSize int
	// Publishers is how many goroutines publish; each sends an equal
	// share of the messages, one message per publish call.
	Publishers int
	// Consumers is how many competing instances of one subscriber consume.
	Consumers int
	// Keys is how many distinct partition keys the messages use; message
	// i has key "key-<i mod Keys>".
	Keys int
	// Timeout bounds the wait for the last message; when it passes, Run
	// fails and reports how many messages are missing.
	Timeout time.Duration
	// SampleEvery is how often the heap is sampled for its peak.
	SampleEvery time.Duration
	// Rate, if positive, paces the publishers: message i is published
	// i/Rate seconds after the start (publisher g sends messages g,
	// g+Publishers, ...), and each publisher waits for its next slot.
	// Zero publishes as fast as the publishers go.
	Rate int
	// AllowDuplicates accepts messages delivered more than once, as
	// at-least-once systems may deliver them; Result.Duplicates counts
	// them. Otherwise a duplicate fails the run.
	AllowDuplicates bool
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Messages, DefaultMessages)
	def(&c.PayloadSize, DefaultPayloadSize)
	def(&c.Publishers, DefaultPublishers)
	def(&c.Consumers, DefaultConsumers)
	def(&c.Keys, DefaultKeys)
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.SampleEvery == 0 {
		c.SampleEvery = DefaultSampleEvery
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Messages < 1:
		return fmt.Errorf("bench: messages must be positive, got %d", c.Messages)
	case c.PayloadSize < HeaderBytes:
		return fmt.Errorf("bench: payload size must be at least %d bytes, got %d", HeaderBytes, c.PayloadSize)
	case c.Publishers < 1 || c.Consumers < 1 || c.Keys < 1:
		return fmt.Errorf("bench: publishers, consumers and keys must be positive, got %d, %d, %d", c.Publishers, c.Consumers, c.Keys)
	case c.Rate < 0:
		return fmt.Errorf("bench: rate must not be negative, got %d", c.Rate)
	case c.Timeout < 0 || c.SampleEvery < 0:
		return fmt.Errorf("bench: timeout and sample interval must not be negative")
	}
	return nil
}

// System is a broker under test.
type System interface {
	// Name identifies the system in benchmark names and tables, e.g.
	// "courier-memory".
	Name() string
	// Start sets up a fresh broker with one channel and starts consumers
	// competing instances of one subscriber on it. Each instance calls
	// deliver with the payload of every message it receives, then
	// acknowledges the message. deliver is safe for concurrent use and
	// must not be called after Session.Close returns. Start returns once
	// messages published from then on reach the consumers.
	Start(ctx context.Context, consumers int, deliver func(payload []byte)) (Session, error)
}

// Session is a started System.
type Session interface {
	// Publish sends one message with the given partition key and payload
	// to the session's channel. It is called from many goroutines at
	// once; the payload is not reused by the caller.
	Publish(ctx context.Context, key string, payload []byte) error
	// Close stops the consumers and releases the broker. It reports any
	// acknowledgement that failed.
	Close(ctx context.Context) error
}

// Result is what one run measured.
type Result struct {
	System      string
	Messages    int
	PayloadSize int
	// EndToEnd runs from the first publish until the last message was
	// handed to a consumer.
	EndToEnd time.Duration
	// Publish runs from the first publish until every publish call
	// returned.
	Publish time.Duration
	// Latency percentiles, from the publish call to the consumer.
	P50, P99, Max time.Duration
	// Mallocs and AllocBytes count the heap allocations of the whole
	// process during EndToEnd, harness included (one payload per message
	// and a few goroutines).
	Mallocs, AllocBytes uint64
	// BaseHeap is the heap in use (runtime.MemStats.HeapInuse) just
	// before the first publish, after a GC; it includes the harness's own
	// per-message bookkeeping (12 bytes a message).
	BaseHeap uint64
	// PeakHeap is the highest heap in use sampled during EndToEnd.
	PeakHeap uint64
	// PeakStacks is the highest goroutine stack memory sampled during
	// EndToEnd (runtime.MemStats.StackInuse), which brokers that run a
	// goroutine per message use instead of heap.
	PeakStacks uint64
	// PeakGoroutines is the highest goroutine count sampled.
	PeakGoroutines int
	// Duplicates counts deliveries of messages already delivered (only
	// with Config.AllowDuplicates; otherwise they fail the run).
	Duplicates int64
	// OtherCPU is how many CPUs, on average over EndToEnd, the rest of
	// the machine kept busy (other processes, and on a virtual machine
	// the CPU time its host gave to others): a measure of how noisy the
	// run was. It is -1 where it cannot be measured (outside Linux).
	OtherCPU float64
	// SelfCPU is the CPU time this process used over EndToEnd (user and
	// system; the in-process servers' included), or -1 where it cannot
	// be measured.
	SelfCPU time.Duration
}

// CPUPerMessage is the process's CPU time per message, in microseconds,
// or -1 where it was not measured.
func (r Result) CPUPerMessage() float64 {
	if r.SelfCPU < 0 || r.Messages == 0 {
		return -1
	}
	return float64(r.SelfCPU.Microseconds()) / float64(r.Messages)
}

func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// EndToEndRate is messages per second from the first publish to the last
// delivery.
func (r Result) EndToEndRate() float64 { return perSecond(r.Messages, r.EndToEnd) }

// PublishRate is messages per second of the publish phase.
func (r Result) PublishRate() float64 { return perSecond(r.Messages, r.Publish) }

// AllocsPerMessage is the heap allocations per message.
func (r Result) AllocsPerMessage() float64 { return float64(r.Mallocs) / float64(r.Messages) }

// BytesPerMessage is the bytes allocated per message.
func (r Result) BytesPerMessage() float64 { return float64(r.AllocBytes) / float64(r.Messages) }

// ErrIncomplete is returned (wrapped) by Run when messages were lost,
// duplicated or corrupted.
var ErrIncomplete = errors.New("bench: not every message was consumed exactly once")

// Run publishes cfg.Messages messages through sys and waits until each was
// consumed; see Config. It fails if any message is missing, delivered twice
// or garbled, or if any publish or acknowledgement fails.
func Run(ctx context.Context, sys System, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	n := cfg.Messages
	res := Result{System: sys.Name(), Messages: n, PayloadSize: cfg.PayloadSize}

	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	// Per-message bookkeeping, allocated before the measurement: the
	// latency of message i and whether it arrived.
	latency := make([]int64, n)
	seen := make([]atomic.Uint32, n)
	var (
		handled, dups, garbled atomic.Int64
		lastNs                 atomic.Int64
		allIn                  = make(chan struct{})
	)
	epoch := time.Now()
	now := func() int64 { return int64(time.Since(epoch)) }
	deliver := func(p []byte) {
		t := now()
		if len(p) < HeaderBytes {
			garbled.Add(1)
			return
		}
		sent := int64(binary.LittleEndian.Uint64(p))
		seq := binary.LittleEndian.Uint64(p[8:])
		if seq >= uint64(n) {
			garbled.Add(1)
			return
		}
		if seen[seq].Swap(1) != 0 {
			dups.Add(1)
			return
		}
		latency[seq] = t - sent
		if handled.Add(1) == int64(n) {
			lastNs.Store(t)
			close(allIn)
		}
	}

	goroutinesBefore := runtime.NumGoroutine()
	sess, err := sys.Start(ctx, cfg.Consumers, deliver)
	if err != nil {
		return res, fmt.Errorf("bench: start %s: %w", sys.Name(), err)
	}
	closed := false
	closeSession := func() error {
		if closed {
			return nil
		}
		closed = true
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err := sess.Close(cctx)
		waitGoroutines(goroutinesBefore, 5*time.Second)
		return err
	}
	defer closeSession()

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res.BaseHeap = before.HeapInuse
	sampler := startSampler(cfg.SampleEvery)
	hostBefore, selfBefore, cpuOK := cpuTimes()

	// Publish: every goroutine waits at the gate, then sends its share.
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		gate     = make(chan struct{})
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	var startNs int64
	for g := range cfg.Publishers {
		// Unpaced, each publisher sends a contiguous share; paced, the
		// publishers take turns.
		from, to, step := g*n/cfg.Publishers, (g+1)*n/cfg.Publishers, 1
		if cfg.Rate > 0 {
			from, to, step = g, n, cfg.Publishers
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			for seq := from; seq < to; seq += step {
				if cfg.Rate > 0 {
					due := startNs + int64(seq)*int64(time.Second)/int64(cfg.Rate)
					if d := time.Duration(due - now()); d > 0 {
						time.Sleep(d)
					}
				}
				p := make([]byte, cfg.PayloadSize)
				binary.LittleEndian.PutUint64(p[8:], uint64(seq))
				binary.LittleEndian.PutUint64(p, uint64(now()))
				if err := sess.Publish(pctx, keys[seq%len(keys)], p); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("bench: publish message %d: %w", seq, err); cancel() })
					return
				}
			}
		}()
	}
	startNs = now()
	close(gate)
	wg.Wait()
	res.Publish = time.Duration(now() - startNs)

	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	if firstErr == nil {
		select {
		case <-allIn:
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	hostAfter, selfAfter, cpuAfterOK := cpuTimes()
	runtime.ReadMemStats(&after)
	peak := sampler.stop()
	res.EndToEnd = time.Duration(lastNs.Load() - startNs)
	res.OtherCPU, res.SelfCPU = -1, -1
	if cpuOK && cpuAfterOK {
		res.SelfCPU = selfAfter - selfBefore
	}
	if wall := time.Duration(now() - startNs); cpuOK && cpuAfterOK && wall > 0 {
		other := (hostAfter - hostBefore) - (selfAfter - selfBefore)
		res.OtherCPU = max(other.Seconds(), 0) / wall.Seconds()
	}
	res.Mallocs = after.Mallocs - before.Mallocs
	res.AllocBytes = after.TotalAlloc - before.TotalAlloc
	res.PeakHeap, res.PeakStacks, res.PeakGoroutines = peak.heap, peak.stacks, peak.goroutines

	cerr := closeSession()
	if firstErr != nil {
		return res, firstErr
	}
	res.Duplicates = dups.Load()
	if got := handled.Load(); got != int64(n) || (dups.Load() != 0 && !cfg.AllowDuplicates) || garbled.Load() != 0 {
		err := fmt.Errorf("%w: %s: %d of %d messages consumed, %d missing, %d duplicates, %d garbled",
			ErrIncomplete, sys.Name(), got, n, int64(n)-got, dups.Load(), garbled.Load())
		switch {
		case got == int64(n):
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		default:
			err = fmt.Errorf("%w (waited %v after the last publish)", err, cfg.Timeout)
		}
		return res, err
	}
	if cerr != nil {
		return res, fmt.Errorf("bench: close %s: %w", sys.Name(), cerr)
	}

	slices.Sort(latency)
	res.P50 = time.Duration(latency[percentileIndex(n, 50)])
	res.P99 = time.Duration(latency[percentileIndex(n, 99)])
	res.Max = time.Duration(latency[n-1])
	return res, nil
}

// percentileIndex is the nearest-rank index of percentile p among n sorted
// values.
func percentileIndex(n, p int) int {
	i := (n*p+99)/100 - 1
	return min(max(i, 0), n-1)
}

// waitGoroutines waits, up to limit, for the goroutine count to fall back to
// n, so that a system's stragglers do not run into the next measurement.
func waitGoroutines(n int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for runtime.NumGoroutine() > n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

// peaks are the highest values a sampler saw.
type peaks struct {
	heap, stacks uint64
	goroutines   int
}

type sampler struct {
	done chan struct{}
	out  chan peaks
}

// startSampler reads the heap and stack sizes every interval until stop.
// It uses runtime/metrics, which does not stop the world.
func startSampler(every time.Duration) *sampler {
	s := &sampler{done: make(chan struct{}), out: make(chan peaks, 1)}
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/sched/goroutines:goroutines"},
	}
	var p peaks
	read := func() {
		metrics.Read(samples)
		// objects + unused is runtime.MemStats.HeapInuse.
		p.heap = max(p.heap, samples[0].Value.Uint64()+samples[1].Value.Uint64())
		p.stacks = max(p.stacks, samples[2].Value.Uint64())
		p.goroutines = max(p.goroutines, int(samples[3].Value.Uint64()))
	}
	read()
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				read()
			case <-s.done:
				read()
				s.out <- p
				return
			}
		}
	}()
	return s
}

func (s *sampler) stop() peaks {
	close(s.done)
	return <-s.out
}
