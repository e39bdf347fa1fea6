package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
)

// caller makes one blocking call: an RPC, or a request through a router.
// It is called from several goroutines at once when a pair is measured
// with Concurrency above 1.
type caller func(ctx context.Context) error

// pairConfig describes an interleaved comparison of two callers (runPair):
// Rounds rounds of Batch calls of each, made by Concurrency goroutines,
// after Warmup unmeasured calls of each.
type pairConfig struct {
	Rounds, Batch, Concurrency, Warmup int
}

// pairSide is what runPair measured of one caller.
type pairSide struct {
	Calls    int
	Busy     time.Duration // the calls' latencies, summed
	Conc     int           // callers at once
	Mallocs  uint64        // heap allocations during the allocation batch, whole process
	Measured int           // calls of the allocation batch
	P50, P99 time.Duration // over every call of every round
	RoundP50 []time.Duration
}

// Rate is the calls per second the side's callers made: callers over the
// mean latency (the two sides' calls alternate, so that neither has a
// wall-clock time of its own).
func (s pairSide) Rate() float64 { return float64(s.Calls*s.Conc) / s.Busy.Seconds() }

// AllocsPerCall is the process's heap allocations per call.
func (s pairSide) AllocsPerCall() float64 { return float64(s.Mallocs) / float64(s.Measured) }

// addedP50 is how much slower b's median call is than a's, as a fraction of
// a's.
func addedP50(a, b pairSide) float64 { return float64(b.P50-a.P50) / float64(a.P50) }

// roundsAdded returns, for each round, b's median over a's minus one.
func roundsAdded(a, b pairSide) []float64 {
	out := make([]float64, len(a.RoundP50))
	for i := range out {
		out[i] = float64(b.RoundP50[i]-a.RoundP50[i]) / float64(a.RoundP50[i])
	}
	return out
}

// runPair measures two callers call by call interleaved (runInterleaved).
func runPair(ctx context.Context, cfg pairConfig, calls [2]caller) ([2]pairSide, error) {
	s, err := runInterleaved(ctx, cfg, calls[:])
	if err != nil {
		return [2]pairSide{}, err
	}
	return [2]pairSide(s), nil
}

// runInterleaved measures callers call by call interleaved: each goroutine
// calls each of them in turn, the first of each turn rotating, so that the
// machine's load, the garbage collector and the CPU's frequency changes
// fall on all alike. The allocations are counted afterwards, in a batch of
// each caller alone.
func runInterleaved(ctx context.Context, cfg pairConfig, calls []caller) ([]pairSide, error) {
	n := len(calls)
	sides := make([]pairSide, n)
	conc := max(cfg.Concurrency, 1)
	per := max(cfg.Batch/conc, 1)
	batch := per * conc
	for k := range n {
		for range cfg.Warmup {
			if err := calls[k](ctx); err != nil {
				return nil, fmt.Errorf("warm-up call: %w", err)
			}
		}
	}
	lat, buf := make([][]time.Duration, n), make([][]time.Duration, n)
	for k := range n {
		lat[k] = make([]time.Duration, 0, batch*cfg.Rounds)
		buf[k] = make([]time.Duration, batch)
		sides[k].Conc = conc
	}
	for round := range cfg.Rounds {
		errs := make([]error, conc)
		loop := func(g int) {
			for i := g * per; i < (g+1)*per; i++ {
				for j := range n {
					k := (round + i + j) % n
					start := time.Now()
					if err := calls[k](ctx); err != nil {
						errs[g] = err
						return
					}
					buf[k][i] = time.Since(start)
				}
			}
		}
		if conc == 1 {
			loop(0)
		} else {
			var wg sync.WaitGroup
			for g := range conc {
				wg.Go(func() { loop(g) })
			}
			wg.Wait()
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		for k := range n {
			s := &sides[k]
			s.Calls += batch
			for _, d := range buf[k] {
				s.Busy += d
			}
			lat[k] = append(lat[k], buf[k]...)
			slices.Sort(buf[k])
			s.RoundP50 = append(s.RoundP50, buf[k][percentileIndex(batch, 50)])
		}
	}
	for k := range n {
		slices.Sort(lat[k])
		sides[k].P50 = lat[k][percentileIndex(len(lat[k]), 50)]
		sides[k].P99 = lat[k][percentileIndex(len(lat[k]), 99)]
		mallocs, err := countAllocs(ctx, calls[k], per, conc)
		if err != nil {
			return nil, err
		}
		sides[k].Mallocs, sides[k].Measured = mallocs, batch
	}
	return sides, nil
}

// countAllocs makes per calls from each of conc goroutines and returns the
// heap allocations the process made meanwhile.
func countAllocs(ctx context.Context, call caller, per, conc int) (uint64, error) {
	var ms0, ms1 runtime.MemStats
	errs := make([]error, conc)
	runtime.ReadMemStats(&ms0)
	var wg sync.WaitGroup
	for g := range conc {
		wg.Go(func() {
			for range per {
				if err := call(ctx); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&ms1)
	return ms1.Mallocs - ms0.Mallocs, errors.Join(errs...)
}

// opCost is the cost of one operation measured in a tight loop.
type opCost struct {
	NsPerOp, AllocsPerOp float64
}

// measureOp runs op in a loop long enough to take about d in total, split
// in rounds whose median time per operation it returns, with the heap
// allocations per operation over all rounds. op returns false when it did
// not do what is measured (e.g. a call that should have been rejected was
// not); measureOp then fails.
func measureOp(ctx context.Context, d time.Duration, rounds int, op func() bool) (opCost, error) {
	if !op() {
		return opCost{}, errors.New("the operation does not do what is measured")
	}
	// Grow the loop until one round takes d/rounds.
	n := 1
	for {
		start := time.Now()
		for range n {
			op()
		}
		if el := time.Since(start); el >= d/time.Duration(rounds) || n >= 1<<30 {
			break
		} else if el < time.Millisecond {
			n *= 10
		} else {
			n = int(float64(n) * 1.2 * float64(d/time.Duration(rounds)) / float64(el))
		}
		if err := ctx.Err(); err != nil {
			return opCost{}, err
		}
	}
	ns := make([]float64, 0, rounds)
	var mallocs uint64
	for range rounds {
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		failed := 0
		start := time.Now()
		for range n {
			if !op() {
				failed++
			}
		}
		el := time.Since(start)
		runtime.ReadMemStats(&ms1)
		if failed > 0 {
			return opCost{}, fmt.Errorf("%d of %d operations did not do what is measured", failed, n)
		}
		mallocs += ms1.Mallocs - ms0.Mallocs
		ns = append(ns, float64(el.Nanoseconds())/float64(n))
		if err := ctx.Err(); err != nil {
			return opCost{}, err
		}
	}
	slices.Sort(ns)
	return opCost{NsPerOp: ns[len(ns)/2], AllocsPerOp: float64(mallocs) / float64(n*rounds)}, nil
}

// fmtMicros formats a duration in microseconds, e.g. "61.2 µs", "1,340 µs".
func fmtMicros(d time.Duration) string {
	us := float64(d) / float64(time.Microsecond)
	if us >= 100 || us <= -100 {
		return groupThousands(int64(math.Round(us))) + " µs"
	}
	return fmt.Sprintf("%.1f µs", us)
}

// fmtSignedPercent formats a fraction as a signed percentage, e.g. "+3.1%".
func fmtSignedPercent(r float64) string { return fmt.Sprintf("%+.1f%%", 100*r) }

// medianOf returns the median of v (which it sorts).
func medianOf(v []float64) float64 {
	slices.Sort(v)
	return v[len(v)/2]
}
