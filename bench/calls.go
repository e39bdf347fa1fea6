package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// CallSystem is a request/reply implementation over messaging under test:
// Courier's commands.Call, or a peer's equivalent.
type CallSystem interface {
	// Name identifies the system in benchmark names and tables.
	Name() string
	// StartCalls starts a responder that answers every request carrying n
	// with a reply carrying n, and a caller, and returns the caller.
	StartCalls(ctx context.Context) (CallSession, error)
}

// CallSession makes blocking calls to the responder of a CallSystem.
type CallSession interface {
	// Call sends a request carrying n and returns the n of its reply.
	Call(ctx context.Context, n int) (int, error)
	// Close stops the caller and the responder and frees what they hold.
	Close(ctx context.Context) error
}

// CallConfig describes one run of the call workload. A run either paces
// calls at Rate per second for Duration (each call in a goroutine of its
// own, started on schedule whether or not earlier calls have returned), or,
// with Rate 0, makes Calls calls from Concurrency goroutines as fast as
// they return.
type CallConfig struct {
	Rate        int
	Duration    time.Duration
	Calls       int
	Concurrency int
	// Timeout bounds each call.
	Timeout time.Duration
}

// CallResult is what a run of the call workload measured.
type CallResult struct {
	Calls    int
	Elapsed  time.Duration // first call started to last answered call returned
	P50, P99 time.Duration
	Max      time.Duration
	Mallocs  uint64 // heap allocations during the run, whole process
	// Lost counts the calls that got no reply within CallConfig.Timeout.
	// Their latency is counted as the time they waited. Only a system that
	// declares it may lose replies (see RunCalls) has any.
	Lost int
}

// replyLoser is implemented by a call system that is known to lose replies
// now and then; RunCalls counts its lost calls instead of failing the run.
type replyLoser interface {
	// LosesReplies says when and why the system's calls may get no reply.
	LosesReplies() string
}

// timeout is the bound on each call: Timeout, or 10 s.
func (c CallConfig) timeout() time.Duration {
	if c.Timeout == 0 {
		return 10 * time.Second
	}
	return c.Timeout
}

// RunCalls runs the call workload once against sys.
func RunCalls(ctx context.Context, sys CallSystem, cfg CallConfig) (CallResult, error) {
	cfg.Timeout = cfg.timeout()
	n := cfg.Calls
	if cfg.Rate > 0 {
		n = int(float64(cfg.Rate) * cfg.Duration.Seconds())
	}
	if n < 1 {
		return CallResult{}, fmt.Errorf("bench: %s: no calls to make", sys.Name())
	}
	s, err := sys.StartCalls(ctx)
	if err != nil {
		return CallResult{}, fmt.Errorf("bench: start %s: %w", sys.Name(), err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = s.Close(cctx)
	}()
	// One unmeasured call sets up whatever a first call sets up (reply
	// subscriptions, streams).
	if _, err := call(ctx, s, -1, cfg.Timeout); err != nil {
		return CallResult{}, fmt.Errorf("bench: %s: first call: %w", sys.Name(), err)
	}

	lat := make([]time.Duration, n)
	var (
		firstErr atomic.Pointer[error]
		lost     atomic.Int64
		wg       sync.WaitGroup
		start    time.Time
		answered = make([]time.Duration, n) // since start; 0 for a lost call
	)
	lossy := false
	if l, ok := sys.(replyLoser); ok {
		lossy = l.LosesReplies() != ""
	}
	one := func(i int) {
		t0 := time.Now()
		if _, err := call(ctx, s, i, cfg.Timeout); err != nil {
			if lossy && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				lost.Add(1)
				lat[i] = time.Since(t0)
				return
			}
			firstErr.CompareAndSwap(nil, &err)
		}
		lat[i] = time.Since(t0)
		answered[i] = time.Since(start)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	start = time.Now()
	if cfg.Rate > 0 {
		interval := time.Second / time.Duration(cfg.Rate)
		for i := range n {
			if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
			wg.Go(func() { one(i) })
		}
	} else {
		var next atomic.Int64
		for range max(cfg.Concurrency, 1) {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					one(i)
				}
			})
		}
	}
	wg.Wait()
	elapsed := slices.Max(answered)
	runtime.ReadMemStats(&ms1)
	if p := firstErr.Load(); p != nil {
		return CallResult{}, fmt.Errorf("bench: %s: %w", sys.Name(), *p)
	}
	if int(lost.Load()) == n {
		return CallResult{}, fmt.Errorf("bench: %s: none of %d calls got a reply within %v", sys.Name(), n, cfg.Timeout)
	}
	slices.Sort(lat)
	return CallResult{
		Calls:   n,
		Elapsed: elapsed,
		P50:     lat[n/2],
		P99:     lat[min(n-1, n*99/100)],
		Max:     lat[n-1],
		Mallocs: ms1.Mallocs - ms0.Mallocs,
		Lost:    int(lost.Load()),
	}, nil
}

// Rate is the answered calls per second.
func (r CallResult) Rate() float64 { return float64(r.Calls-r.Lost) / r.Elapsed.Seconds() }

// call makes one call and checks that the reply is the request's own.
func call(ctx context.Context, s CallSession, i int, timeout time.Duration) (int, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got, err := s.Call(cctx, i)
	if err != nil {
		return 0, fmt.Errorf("call %d: %w", i, err)
	}
	if got != i {
		return 0, fmt.Errorf("call %d: got the reply of call %d", i, got)
	}
	return got, nil
}
