package bench

import (
	"context"
	"errors"
	"fmt"
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

// callModes are the two modes of the call workload: paced at 1,000 calls
// a second (each call started on schedule), and saturated by 64 callers.
func callModes(quick bool) []struct {
	Name string
	Cfg  CallConfig
} {
	paced := CallConfig{Rate: 1000, Duration: 5 * time.Second}
	saturated := CallConfig{Calls: 20_000, Concurrency: 64}
	if quick {
		paced.Duration = 500 * time.Millisecond
		saturated.Calls = 2_000
	}
	return []struct {
		Name string
		Cfg  CallConfig
	}{{"paced-1000", paced}, {"saturated", saturated}}
}

// callSuite measures blocking request/reply over messaging: Courier's
// commands.Call against Watermill's request-reply component (RunCalls).
type callSuiteT struct{}

func callSuite() Suite { return callSuiteT{} }

// Name implements Suite.
func (callSuiteT) Name() string { return "calls" }

// Run implements Suite.
func (callSuiteT) Run(ctx context.Context, o Options) ([]Table, error) {
	t := Table{ID: "calls", Title: "request/reply", Columns: []string{"mode", "system", "calls/s", "p50", "p99", "max", "allocs/call", "lost"}}
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
		for _, sys := range systems {
			r, err := RunCalls(ctx, sys, mode.Cfg)
			if err != nil {
				errs = append(errs, err)
				t.Note("%s, %s failed: %v", sys.Name(), mode.Name, err)
				continue
			}
			rate := r.Rate()
			o.progress("%-12s %-34s %-12s %10s calls/s  p99 %s", "calls", sys.Name(), mode.Name, fmtRate(rate), fmtLatency(r.P99))
			t.AddRow(label, sys.Name(), fmtRate(rate), fmtLatency(r.P50), fmtLatency(r.P99), fmtLatency(r.Max),
				fmt.Sprintf("%.0f", float64(r.Mallocs)/float64(r.Calls)), fmt.Sprint(r.Lost))
			if r.Lost > 0 {
				t.Note("%s, %s: %d of %d calls got no reply within %v: %s", sys.Name(), mode.Name, r.Lost, r.Calls,
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
