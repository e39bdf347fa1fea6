package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Suite is a group of systems measured together, in one run, into one or
// more tables: the memory broker beside GoChannel, Courier on NATS beside
// Watermill's NATS adapter and raw nats.go, and so on. Suites returns them
// all; the courier-bench command and the go test benchmarks run them.
type Suite interface {
	// Name is the suite's short name, used to select it (-suite).
	Name() string
	// Run measures every system of the suite and returns its tables. A
	// system that fails or whose server is unreachable leaves a note in
	// the table; Run then also returns an error describing it, after
	// measuring the others.
	Run(ctx context.Context, o Options) ([]Table, error)
}

// Options are the settings of a suite run. The zero value is the full
// run.
type Options struct {
	// Quick selects a short run for local checks and CI: fewer messages,
	// one payload size (64 B) where a suite compares three, shorter
	// paced phases, no warm-up runs.
	Quick bool
	// Messages overrides the number of messages of each workload run
	// (0: the suite's default, smaller when Quick).
	Messages int
	// Sizes overrides the payload sizes (default 16, 64 and 256 bytes;
	// 64 when Quick).
	Sizes []int
	// Warmup is the number of unmeasured runs of each system before the
	// measured one (default 1, 0 when Quick); -1 means none.
	Warmup int
	// RequireServers makes an unreachable server an error instead of a
	// skipped system, as CI wants.
	RequireServers bool
	// Progress, if not nil, receives a line per measured run.
	Progress io.Writer
	// Soak, if positive, makes the outbox suite run only its soak phase:
	// each Courier relay at 1,000 messages a second for this long, with
	// the heap sampled every 10 s (see OutboxSuite).
	Soak time.Duration
	// Rate, if positive, paces the publishers of the broker suites at
	// this many messages a second in all, so that their latency columns
	// are those of a steady load rather than of a backlog.
	Rate int
}

func (o Options) sizes() []int {
	switch {
	case len(o.Sizes) > 0:
		return o.Sizes
	case o.Quick:
		return []int{DefaultPayloadSize}
	}
	return []int{16, 64, 256}
}

func (o Options) warmup() int {
	switch {
	case o.Warmup < 0:
		return 0
	case o.Warmup > 0:
		return o.Warmup
	case o.Quick:
		return 0
	}
	return 1
}

func (o Options) messages(full, quick int) int {
	switch {
	case o.Messages > 0:
		return o.Messages
	case o.Quick:
		return quick
	}
	return full
}

func (o Options) progress(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, format+"\n", args...)
	}
}

// Suites returns every suite, in the order the command runs them.
func Suites() []Suite {
	return []Suite{
		memorySuite(),
		natsSuite(),
		kafkaSuite(),
		amqpSuite(),
		activeMQSuite(),
		directSuite{},
		outboxSuite(),
		callSuite(),
		eventSuite(),
		rpcSuite(),
		discoverySuite(),
		observeSuite(),
	}
}

// SuiteNames returns the names of Suites, in order.
func SuiteNames() []string {
	var names []string
	for _, s := range Suites() {
		names = append(names, s.Name())
	}
	return names
}

// SelectSuites returns the suites named in names, in the order of Suites;
// "all" selects every suite. An unknown name is an error.
func SelectSuites(names []string) ([]Suite, error) {
	all := Suites()
	if slices.Contains(names, "all") {
		return all, nil
	}
	var out []Suite
	for _, n := range names {
		i := slices.IndexFunc(all, func(s Suite) bool { return s.Name() == n })
		if i < 0 {
			return nil, fmt.Errorf("bench: unknown suite %q (known: %s, all)", n, strings.Join(SuiteNames(), ", "))
		}
		out = append(out, all[i])
	}
	slices.SortStableFunc(out, func(a, b Suite) int {
		return slices.IndexFunc(all, func(s Suite) bool { return s.Name() == a.Name() }) -
			slices.IndexFunc(all, func(s Suite) bool { return s.Name() == b.Name() })
	})
	return slices.CompactFunc(out, func(a, b Suite) bool { return a.Name() == b.Name() }), nil
}

// Prober is implemented by systems that need a server: Probe reports
// whether it is reachable, and how to start it if not.
type Prober interface {
	Probe(ctx context.Context) error
}

// ErrUnavailable is returned (wrapped) by Probe when a system's server is
// unreachable.
var ErrUnavailable = errors.New("bench: server unavailable")

// probe checks sys's server, if it has one. It returns a skip reason, or
// an error when o.RequireServers.
func probe(ctx context.Context, sys any, o Options) (skip string, err error) {
	p, ok := sys.(Prober)
	if !ok {
		return "", nil
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if perr := p.Probe(pctx); perr != nil {
		if o.RequireServers || os.Getenv("CI") == "true" {
			return "", perr
		}
		return perr.Error(), nil
	}
	return "", nil
}

// Check compares two systems of a suite at each payload size: the first's
// end-to-end rate must be at least Min times the second's.
type Check struct {
	System, Peer string
	Min          float64
	// Goal names the target, e.g. "issue 3: >= 80% of raw nats.go".
	Goal string
}

// BrokerSuite runs the end-to-end workload (Run) on each of its systems at
// each payload size, the systems of one size one after the other, and
// reports one table of results and one of its checks.
type BrokerSuite struct {
	ID            string
	Systems       func() []System
	FullMessages  int
	QuickMessages int
	// Consumers and Publishers override the workload's defaults.
	Consumers, Publishers int
	Checks                []Check
	// Rounds, if more than 1, is the number of measured runs of each
	// system at each size (1 with -quick), taken in rounds: each round
	// runs every system once, so that a busy spell of the machine falls
	// on all of them. The table then gives the run with the median
	// end-to-end rate, and the range of the rates; the targets compare
	// medians.
	Rounds int
}

// rounds is the number of measured runs of each system at each size.
func (s BrokerSuite) rounds(o Options) int {
	if o.Quick || s.Rounds < 1 {
		return 1
	}
	return s.Rounds
}

// Name implements Suite.
func (s BrokerSuite) Name() string { return s.ID }

// Config returns the workload of one run at the given payload size.
func (s BrokerSuite) Config(o Options, size int) Config {
	return Config{
		Messages:    o.messages(s.FullMessages, s.QuickMessages),
		PayloadSize: size,
		Consumers:   s.Consumers,
		Publishers:  s.Publishers,
		Rate:        o.Rate,
	}
}

// Run implements Suite.
func (s BrokerSuite) Run(ctx context.Context, o Options) ([]Table, error) {
	rounds := s.rounds(o)
	t := Table{ID: "brokers-" + s.ID, Columns: []string{"payload", "system", "end-to-end msgs/s", "publish msgs/s",
		"p50 latency", "p99 latency", "CPU µs/msg", "allocs/msg", "B/msg", "peak heap", "other CPUs"}}
	if rounds > 1 {
		t.Columns = slices.Insert(t.Columns, 3, "runs", "end-to-end msgs/s of every run")
	}
	var errs []error
	skipped := map[string]string{}
	rates := map[string]float64{}
	systems := s.Systems()
	for _, size := range o.sizes() {
		cfg := s.Config(o, size)
		t.Title = fmt.Sprintf("%d messages per run, %d publishers, %d consumers", cfg.withDefaults().Messages,
			cfg.withDefaults().Publishers, cfg.withDefaults().Consumers)
		if cfg.Rate > 0 {
			t.Title += fmt.Sprintf(", paced at %d msgs/s", cfg.Rate)
		}
		// A failed run is noted and the system's other runs still count.
		runs := make([][]Result, len(systems))
		for round := range rounds {
			for i, sys := range systems {
				if _, done := skipped[sys.Name()]; done {
					continue
				}
				if round == 0 {
					skip, err := probe(ctx, sys, o)
					if err != nil {
						errs = append(errs, fmt.Errorf("%s: %w", sys.Name(), err))
						skipped[sys.Name()] = err.Error()
						continue
					}
					if skip != "" {
						skipped[sys.Name()] = skip
						continue
					}
				}
				warmup := o.warmup()
				if round > 0 {
					warmup = 0
				}
				r, err := Measure(ctx, sys, cfg, warmup)
				if err != nil {
					errs = append(errs, err)
					t.Note("%s at %d B, run %d of %d, failed: %v", sys.Name(), size, round+1, rounds, err)
					continue
				}
				o.progress("%-12s %-34s %5d B  %10s msgs/s  p99 %s", s.ID, sys.Name(), size, fmtRate(r.EndToEndRate()), fmtLatency(r.P99))
				runs[i] = append(runs[i], r)
			}
		}
		for i, sys := range systems {
			if len(runs[i]) == 0 {
				continue
			}
			sorted := slices.SortedFunc(slices.Values(runs[i]), func(a, b Result) int {
				return cmp.Compare(a.EndToEndRate(), b.EndToEndRate())
			})
			r := sorted[len(sorted)/2]
			rates[fmt.Sprintf("%s/%d", sys.Name(), size)] = r.EndToEndRate()
			row := []string{fmt.Sprintf("%d B", size), sys.Name(), fmtRate(r.EndToEndRate()), fmtRate(r.PublishRate()),
				fmtLatency(r.P50), fmtLatency(r.P99), fmtMeasured(r.CPUPerMessage()), fmtOneDecimal(r.AllocsPerMessage()),
				fmtRate(r.BytesPerMessage()), fmtMiB(r.PeakHeap), fmtMeasured(r.OtherCPU)}
			if rounds > 1 {
				row = slices.Insert(row, 3, fmt.Sprint(len(sorted)),
					fmtRate(sorted[0].EndToEndRate())+" to "+fmtRate(sorted[len(sorted)-1].EndToEndRate()))
			}
			t.AddRow(row...)
		}
	}
	for _, name := range sortedKeys(skipped) {
		t.Note("%s not measured: %s", name, skipped[name])
	}
	tables := []Table{t}
	if len(s.Checks) > 0 {
		tables = append(tables, checkTable("brokers-"+s.ID+"-targets", s.Checks, o.sizes(), rates))
	}
	return tables, errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// checkTable compares the end-to-end rates of the checks' pairs.
func checkTable(id string, checks []Check, sizes []int, rates map[string]float64) Table {
	t := Table{ID: id, Title: "targets", Columns: []string{"payload", "target", "Courier msgs/s", "peer msgs/s", "ratio", "met"}}
	for _, size := range sizes {
		for _, c := range checks {
			a, okA := rates[fmt.Sprintf("%s/%d", c.System, size)]
			b, okB := rates[fmt.Sprintf("%s/%d", c.Peer, size)]
			if !okA || !okB || b == 0 {
				t.AddRow(fmt.Sprintf("%d B", size), c.Goal, "-", "-", "-", "not measured")
				continue
			}
			met := "yes"
			if a/b < c.Min {
				met = "**no**"
			}
			t.AddRow(fmt.Sprintf("%d B", size), c.Goal, fmtRate(a), fmtRate(b), fmt.Sprintf("%.2fx", a/b), met)
		}
	}
	return t
}

// Measure runs the workload on sys warmup times unmeasured, then once
// measured, and returns the measured run.
func Measure(ctx context.Context, sys System, cfg Config, warmup int) (Result, error) {
	for range warmup {
		if _, err := Run(ctx, sys, cfg); err != nil {
			return Result{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	return Run(ctx, sys, cfg)
}

// memorySuite is the memory broker against Watermill's GoChannel.
func memorySuite() Suite {
	return BrokerSuite{
		ID:            "memory",
		Systems:       Systems,
		FullMessages:  DefaultMessages,
		QuickMessages: QuickMessages,
		Checks: []Check{
			{System: "courier-memory", Peer: "watermill-gochannel-block", Min: 1, Goal: ">= Watermill GoChannel (fastest set-up)"},
			{System: "courier-memory", Peer: "watermill-gochannel-block", Min: 3, Goal: "issue 21, ordered: >= 3x Watermill GoChannel"},
			{System: "courier-memory-concurrent", Peer: "watermill-gochannel-block", Min: 3, Goal: "issue 21, concurrent: >= 3x Watermill GoChannel"},
		},
	}
}
