package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// callSystems are the request/reply implementations BenchmarkCall compares.
func callSystems() []CallSystem {
	return []CallSystem{
		CourierCall{Label: "courier-memory", Open: newCourierMemory},
		CourierCall{Label: "courier-natsjs-embedded", Open: newCourierEmbeddedNATS},
		WatermillCall{Transport: goChannelTransport},
		WatermillCall{Transport: natsTransport},
	}
}

// callSystemsFor returns the call systems that can run cfg, and a note for
// each that cannot (see WatermillCall.Unsupported).
func callSystemsFor(cfg CallConfig) (run []CallSystem, notes []string) {
	for _, sys := range callSystems() {
		if u, ok := sys.(interface{ Unsupported(CallConfig) string }); ok {
			if why := u.Unsupported(cfg); why != "" {
				notes = append(notes, sys.Name()+": "+why)
				continue
			}
		}
		run = append(run, sys)
	}
	return run, notes
}

// eventSystems are the domain-event publishers and dispatchers
// BenchmarkEventDispatch compares.
func eventSystems() []System {
	return []System{
		CourierEvents{Label: "courier-events-memory", Open: newCourierMemory},
		WatermillEvents{},
	}
}

// callMode is one mode of the call workload: its configuration and how
// many runs of each system it takes.
type callMode struct {
	Name string
	Cfg  CallConfig
	// Rounds is the number of runs of each system, interleaved: round r
	// runs every system once. A p99 over a few seconds swings with a
	// busy moment of the machine, so the table reports the median run.
	Rounds int
}

// callModes are the two modes of the call workload: paced at 1,000 calls
// a second (each call started on schedule), and saturated by 64 callers.
func callModes(quick bool) []callMode {
	paced := callMode{Name: "paced-1000", Cfg: CallConfig{Rate: 1000, Duration: 5 * time.Second}, Rounds: 5}
	saturated := callMode{Name: "saturated", Cfg: CallConfig{Calls: 20_000, Concurrency: 64}, Rounds: 3}
	if quick {
		paced.Cfg.Duration = 500 * time.Millisecond
		saturated.Cfg.Calls = 2_000
		paced.Rounds, saturated.Rounds = 1, 1
	}
	return []callMode{paced, saturated}
}

// medianRun returns the run with the median p99 of rs, and the lowest and
// highest p99.
func medianRun(rs []CallResult) (median CallResult, lo, hi time.Duration) {
	sorted := slices.SortedFunc(slices.Values(rs), func(a, b CallResult) int { return cmp.Compare(a.P99, b.P99) })
	return sorted[len(sorted)/2], sorted[0].P99, sorted[len(sorted)-1].P99
}

// callSuite measures blocking request/reply over messaging: Courier's
// commands.Call against Watermill's request-reply component (RunCalls).
type callSuiteT struct{}

func callSuite() Suite { return callSuiteT{} }

// Name implements Suite.
func (callSuiteT) Name() string { return "calls" }

// Run implements Suite.
func (callSuiteT) Run(ctx context.Context, o Options) ([]Table, error) {
	t := Table{ID: "calls", Title: "request/reply", Columns: []string{"mode", "system", "runs", "calls/s", "p50", "p99", "p99 of every run", "max", "allocs/call", "lost"}}
	var errs []error
	for _, mode := range callModes(o.Quick) {
		label := "paced 1,000/s"
		if mode.Cfg.Rate == 0 {
			label = fmt.Sprintf("saturated, %d callers", mode.Cfg.Concurrency)
		}
		systems, notes := callSystemsFor(mode.Cfg)
		for _, n := range notes {
			t.Note("%s, %s not run: %s", label, mode.Name, n)
		}
		runs := make([][]CallResult, len(systems))
		failed := make([]bool, len(systems))
		for range mode.Rounds {
			for i, sys := range systems {
				if failed[i] {
					continue
				}
				r, err := RunCalls(ctx, sys, mode.Cfg)
				if err != nil {
					failed[i] = true
					errs = append(errs, err)
					t.Note("%s, %s failed: %v", sys.Name(), mode.Name, err)
					continue
				}
				o.progress("%-12s %-34s %-12s %10s calls/s  p99 %s", "calls", sys.Name(), mode.Name, fmtRate(r.Rate()), fmtLatency(r.P99))
				runs[i] = append(runs[i], r)
			}
		}
		for i, sys := range systems {
			if failed[i] {
				continue
			}
			r, lo, hi := medianRun(runs[i])
			var lost, calls int
			for _, x := range runs[i] {
				lost += x.Lost
				calls += x.Calls
			}
			t.AddRow(label, sys.Name(), fmt.Sprint(len(runs[i])), fmtRate(r.Rate()), fmtLatency(r.P50), fmtLatency(r.P99),
				fmtLatency(lo)+" to "+fmtLatency(hi), fmtLatency(r.Max),
				fmt.Sprintf("%.0f", float64(r.Mallocs)/float64(r.Calls)), fmt.Sprint(lost))
			if lost > 0 {
				t.Note("%s, %s: %d of %d calls got no reply within %v: %s", sys.Name(), mode.Name, lost, calls,
					mode.Cfg.timeout(), sys.(replyLoser).LosesReplies())
			}
		}
	}
	return []Table{t}, errors.Join(errs...)
}

// eventSuite runs the end-to-end workload with typed domain events, 64-byte
// payloads: Courier's events package against Watermill's CQRS event bus.
func eventSuite() Suite {
	return eventSuiteT{BrokerSuite{ID: "events", Systems: eventSystems, FullMessages: DefaultMessages, QuickMessages: QuickMessages}}
}

type eventSuiteT struct{ BrokerSuite }

// Run implements Suite: one payload size, 64 bytes.
func (s eventSuiteT) Run(ctx context.Context, o Options) ([]Table, error) {
	o.Sizes = []int{DefaultPayloadSize}
	return s.BrokerSuite.Run(ctx, o)
}
