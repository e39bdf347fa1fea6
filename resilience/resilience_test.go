package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/resilience"
)

// recorder is an Observer keeping what it saw.
type recorder struct {
	resilience.NopObserver
	mu          sync.Mutex
	transitions []string
	rejected    map[string]int
	retries     int
	timeouts    int
	fallbacks   int
}

func (r *recorder) BreakerStateChanged(_, key string, from, to resilience.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.transitions = append(r.transitions, fmt.Sprintf("%s:%s->%s", key, from, to))
}

func (r *recorder) Rejected(_, _ string, reason error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rejected == nil {
		r.rejected = map[string]int{}
	}
	r.rejected[reason.Error()]++
}

func (r *recorder) Retrying(string, int, time.Duration, error) {
	r.mu.Lock()
	r.retries++
	r.mu.Unlock()
}
func (r *recorder) TimedOut(string) { r.mu.Lock(); r.timeouts++; r.mu.Unlock() }
func (r *recorder) FellBack(string, error) {
	r.mu.Lock()
	r.fallbacks++
	r.mu.Unlock()
}

func (r *recorder) trace() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.transitions, " ")
}

var errBoom = errors.New("boom")

// scripted is an endpoint whose outcome the test sets; it counts calls.
type scripted struct {
	calls atomic.Int64
	fail  atomic.Bool
}

func (s *scripted) call(ctx context.Context, req string) (string, error) {
	s.calls.Add(1)
	if s.fail.Load() {
		return "", errBoom
	}
	return "ok:" + req, nil
}

func mustChain(t testing.TB, opts ...resilience.Option) *resilience.Chain {
	t.Helper()
	c, err := resilience.NewChain(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBreakerOpensRejectsHalfOpensAndCloses(t *testing.T) {
	obs := &recorder{}
	c := mustChain(t, resilience.WithObserver(obs),
		resilience.WithCircuitBreaker(resilience.FailureCount(3, 3), resilience.OpenDelay(50*time.Millisecond), resilience.HalfOpenProbes(2)))
	s := &scripted{}
	e := resilience.Wrap(c, resilience.Spec[string, string]{Key: func(r string) string { return "inst-" + r[:1] }}, s.call)
	ctx := context.Background()

	s.fail.Store(true)
	for i := range 3 {
		if _, err := e(ctx, "a"); !errors.Is(err, errBoom) {
			t.Fatalf("call %d: %v, want boom", i, err)
		}
	}
	if got := c.Breakers().State("inst-a"); got != resilience.Open {
		t.Fatalf("state after 3 failures = %v, want open", got)
	}
	if c.Breakers().Allow("inst-a") {
		t.Fatal("Allow = true for an open breaker")
	}
	// Another key is unaffected.
	if c.Breakers().State("inst-b") != resilience.Closed || !c.Breakers().Allow("inst-b") {
		t.Fatal("breaker of another key is not closed")
	}
	before := s.calls.Load()
	if _, err := e(ctx, "a"); !errors.Is(err, resilience.ErrBreakerOpen) || !resilience.Rejected(err) {
		t.Fatalf("call while open: %v, want ErrBreakerOpen", err)
	}
	if s.calls.Load() != before {
		t.Fatal("an open breaker let the call through")
	}

	time.Sleep(60 * time.Millisecond)
	if !c.Breakers().Allow("inst-a") {
		t.Fatal("Allow = false after the open delay")
	}
	s.fail.Store(false)
	if _, err := e(ctx, "a"); err != nil {
		t.Fatalf("first probe: %v", err)
	}
	if got := c.Breakers().State("inst-a"); got != resilience.HalfOpen {
		t.Fatalf("after one of two probes: %v, want half-open", got)
	}
	if _, err := e(ctx, "a"); err != nil {
		t.Fatalf("second probe: %v", err)
	}
	if got := c.Breakers().State("inst-a"); got != resilience.Closed {
		t.Fatalf("after the probes: %v, want closed", got)
	}
	want := "inst-a:closed->open inst-a:open->half-open inst-a:half-open->closed"
	if got := obs.trace(); got != want {
		t.Fatalf("transitions %q, want %q", got, want)
	}
	if obs.rejected[resilience.ErrBreakerOpen.Error()] != 1 {
		t.Fatalf("rejections %v, want one breaker rejection", obs.rejected)
	}
	if snap := c.Breakers().Snapshot(); snap["inst-a"] != resilience.Closed || len(snap) != 1 {
		t.Fatalf("snapshot %v", snap)
	}
}

func TestBreakerFailedProbeReopens(t *testing.T) {
	c := mustChain(t, resilience.WithCircuitBreaker(resilience.FailureCount(1, 1), resilience.OpenDelay(20*time.Millisecond)))
	s := &scripted{}
	s.fail.Store(true)
	e := resilience.Wrap(c, resilience.Spec[string, string]{}, s.call)
	_, _ = e(context.Background(), "x")
	time.Sleep(30 * time.Millisecond)
	if _, err := e(context.Background(), "x"); !errors.Is(err, errBoom) {
		t.Fatalf("probe: %v", err)
	}
	if got := c.Breakers().State(""); got != resilience.Open {
		t.Fatalf("after a failed probe: %v, want open", got)
	}
}

func TestBreakerFailureRateNeedsMinimumCalls(t *testing.T) {
	c := mustChain(t, resilience.WithCircuitBreaker(resilience.FailureRate(0.5, 4, time.Minute)))
	s := &scripted{}
	e := resilience.Wrap(c, resilience.Spec[string, string]{}, s.call)
	ctx := context.Background()
	s.fail.Store(true)
	_, _ = e(ctx, "x")
	_, _ = e(ctx, "x")
	s.fail.Store(false)
	_, _ = e(ctx, "x") // 2 of 3 failed, but fewer than 4 calls
	if got := c.Breakers().State(""); got != resilience.Closed {
		t.Fatalf("below minimum calls: %v, want closed", got)
	}
	_, _ = e(ctx, "x") // 2 of 4 = 50%
	if got := c.Breakers().State(""); got != resilience.Open {
		t.Fatalf("at 50%% of 4 calls: %v, want open", got)
	}
}

func TestBreakerClassifier(t *testing.T) {
	c := mustChain(t, resilience.WithCircuitBreaker(resilience.FailureCount(1, 1)))
	e := resilience.Wrap(c, resilience.Spec[string, string]{}, func(ctx context.Context, _ string) (string, error) {
		return "", resilience.Permanent(errors.New("no such order"))
	})
	for range 3 {
		_, _ = e(context.Background(), "x")
	}
	if got := c.Breakers().State(""); got != resilience.Closed {
		t.Fatalf("permanent errors opened the breaker: %v", got)
	}
}

func TestBulkheadRejectsExcessAtOnce(t *testing.T) {
	obs := &recorder{}
	c := mustChain(t, resilience.WithBulkhead(2), resilience.WithObserver(obs))
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	e := resilience.Wrap(c, resilience.Spec[string, string]{}, func(ctx context.Context, _ string) (string, error) {
		entered <- struct{}{}
		<-release
		return "ok", nil
	})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _, _ = e(context.Background(), "x") })
	}
	<-entered
	<-entered
	if got := c.Bulkhead().InUse(); got != 2 {
		t.Fatalf("InUse = %d, want 2", got)
	}
	start := time.Now()
	_, err := e(context.Background(), "x")
	if !errors.Is(err, resilience.ErrBulkheadFull) {
		t.Fatalf("third call: %v, want ErrBulkheadFull", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("rejection took %v, want immediate", d)
	}
	close(release)
	wg.Wait()
	if got := c.Bulkhead().InUse(); got != 0 {
		t.Fatalf("InUse after = %d", got)
	}
	if _, err := e(context.Background(), "x"); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// TestBulkheadBoundsConcurrentCallers has many goroutines take and return
// permits at once: never more than the bound are out, and every permit
// comes back.
func TestBulkheadBoundsConcurrentCallers(t *testing.T) {
	const max = 3
	b, err := resilience.NewBulkhead(max)
	if err != nil {
		t.Fatal(err)
	}
	var out, peak, granted atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 2000 {
				if b.Acquire() != nil {
					continue
				}
				granted.Add(1)
				n := out.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				if got := b.InUse(); got < 1 || got > max {
					t.Errorf("InUse = %d with a permit out, want 1..%d", got, max)
				}
				out.Add(-1)
				b.Release()
			}
		})
	}
	wg.Wait()
	if peak.Load() > max || granted.Load() == 0 {
		t.Fatalf("%d permits out at once (bound %d), %d granted", peak.Load(), max, granted.Load())
	}
	if got := b.InUse(); got != 0 {
		t.Fatalf("InUse after = %d", got)
	}
	for range max {
		if err := b.Acquire(); err != nil {
			t.Fatalf("permit not returned: %v", err)
		}
	}
	if err := b.Acquire(); err != resilience.ErrBulkheadFull {
		t.Fatalf("acquire beyond the bound: %v", err)
	}
}

func TestTimeoutCancelsTheAttempt(t *testing.T) {
	obs := &recorder{}
	c := mustChain(t, resilience.WithTimeout(30*time.Millisecond), resilience.WithObserver(obs))
	sawCancel := make(chan error, 1)
	e := resilience.Wrap(c, resilience.Spec[string, string]{}, func(ctx context.Context, _ string) (string, error) {
		<-ctx.Done()
		sawCancel <- ctx.Err()
		return "", ctx.Err()
	})
	start := time.Now()
	_, err := e(context.Background(), "x")
	if !errors.Is(err, resilience.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout and DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 30*time.Millisecond || d > time.Second {
		t.Fatalf("returned after %v", d)
	}
	if got := <-sawCancel; !errors.Is(got, context.DeadlineExceeded) {
		t.Fatalf("endpoint saw %v", got)
	}
	if obs.timeouts != 1 {
		t.Fatalf("timeouts observed = %d", obs.timeouts)
	}
	// The caller's own deadline is not reported as the chain's timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := e(ctx, "x"); errors.Is(err, resilience.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller deadline: %v", err)
	}
}

type retryAfter struct{ d time.Duration }

func (e retryAfter) Error() string             { return "busy" }
func (e retryAfter) RetryAfter() time.Duration { return e.d }

func TestRetry(t *testing.T) {
	idem := func(r string) bool { return r != "post" }
	t.Run("backoff until success", func(t *testing.T) {
		obs := &recorder{}
		c := mustChain(t, resilience.WithObserver(obs), resilience.WithRetry(resilience.MaxAttempts(4), resilience.Backoff(time.Millisecond, 4*time.Millisecond)))
		var n atomic.Int64
		var attempts []int
		e := resilience.Wrap(c, resilience.Spec[string, string]{Idempotent: idem}, func(ctx context.Context, _ string) (string, error) {
			attempts = append(attempts, resilience.Attempt(ctx))
			if n.Add(1) < 3 {
				return "", errBoom
			}
			return "ok", nil
		})
		if got, err := e(context.Background(), "get"); err != nil || got != "ok" {
			t.Fatalf("got %q, %v", got, err)
		}
		if fmt.Sprint(attempts) != "[1 2 3]" || obs.retries != 2 {
			t.Fatalf("attempts %v, retries %d", attempts, obs.retries)
		}
	})
	t.Run("gives up after max attempts", func(t *testing.T) {
		c := mustChain(t, resilience.WithRetry(resilience.MaxAttempts(3), resilience.Backoff(time.Millisecond, time.Millisecond)))
		s := &scripted{}
		s.fail.Store(true)
		e := resilience.Wrap(c, resilience.Spec[string, string]{Idempotent: idem}, s.call)
		if _, err := e(context.Background(), "get"); !errors.Is(err, errBoom) || s.calls.Load() != 3 {
			t.Fatalf("err %v after %d calls, want boom after 3", err, s.calls.Load())
		}
	})
	t.Run("not idempotent", func(t *testing.T) {
		c := mustChain(t, resilience.WithRetry(resilience.Backoff(time.Millisecond, time.Millisecond)))
		s := &scripted{}
		s.fail.Store(true)
		e := resilience.Wrap(c, resilience.Spec[string, string]{Idempotent: idem}, s.call)
		_, _ = e(context.Background(), "post")
		if s.calls.Load() != 1 {
			t.Fatalf("non-idempotent call sent %d times", s.calls.Load())
		}
	})
	t.Run("no Idempotent function means no retry", func(t *testing.T) {
		c := mustChain(t, resilience.WithRetry(resilience.Backoff(time.Millisecond, time.Millisecond)))
		s := &scripted{}
		s.fail.Store(true)
		_, _ = resilience.Wrap(c, resilience.Spec[string, string]{}, s.call)(context.Background(), "get")
		if s.calls.Load() != 1 {
			t.Fatalf("sent %d times", s.calls.Load())
		}
	})
	t.Run("permanent", func(t *testing.T) {
		c := mustChain(t, resilience.WithRetry(resilience.Backoff(time.Millisecond, time.Millisecond)))
		var n atomic.Int64
		e := resilience.Wrap(c, resilience.Spec[string, string]{Idempotent: idem}, func(context.Context, string) (string, error) {
			n.Add(1)
			return "", resilience.Permanent(errBoom)
		})
		if _, err := e(context.Background(), "get"); !errors.Is(err, errBoom) || n.Load() != 1 {
			t.Fatalf("err %v after %d calls", err, n.Load())
		}
	})
	t.Run("honours Retry-After", func(t *testing.T) {
		c := mustChain(t, resilience.WithRetry(resilience.MaxAttempts(2), resilience.Backoff(time.Millisecond, time.Millisecond)))
		var n atomic.Int64
		e := resilience.Wrap(c, resilience.Spec[string, string]{Idempotent: idem}, func(context.Context, string) (string, error) {
			if n.Add(1) == 1 {
				return "", retryAfter{80 * time.Millisecond}
			}
			return "ok", nil
		})
		start := time.Now()
		if _, err := e(context.Background(), "get"); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 80*time.Millisecond {
			t.Fatalf("retried after %v, before the server's Retry-After of 80ms", d)
		}
	})
	t.Run("Retry-After beyond the cap ends retries", func(t *testing.T) {
		c := mustChain(t, resilience.WithRetry(resilience.MaxRetryAfter(time.Second)))
		var n atomic.Int64
		e := resilience.Wrap(c, resilience.Spec[string, string]{Idempotent: idem}, func(context.Context, string) (string, error) {
			n.Add(1)
			return "", retryAfter{time.Minute}
		})
		if _, err := e(context.Background(), "get"); err == nil || n.Load() != 1 {
			t.Fatalf("err %v after %d calls", err, n.Load())
		}
	})
	t.Run("open breaker stops retries", func(t *testing.T) {
		c := mustChain(t, resilience.WithRetry(resilience.MaxAttempts(5), resilience.Backoff(time.Millisecond, time.Millisecond)),
			resilience.WithCircuitBreaker(resilience.FailureCount(2, 2), resilience.OpenDelay(time.Minute)))
		s := &scripted{}
		s.fail.Store(true)
		e := resilience.Wrap(c, resilience.Spec[string, string]{Idempotent: idem}, s.call)
		if _, err := e(context.Background(), "get"); !errors.Is(err, resilience.ErrBreakerOpen) || s.calls.Load() != 2 {
			t.Fatalf("err %v after %d calls, want ErrBreakerOpen after 2", err, s.calls.Load())
		}
	})
	t.Run("caller deadline shorter than the backoff", func(t *testing.T) {
		c := mustChain(t, resilience.WithRetry(resilience.Backoff(time.Second, time.Second)))
		s := &scripted{}
		s.fail.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := resilience.Wrap(c, resilience.Spec[string, string]{Idempotent: idem}, s.call)(ctx, "get")
		if !errors.Is(err, errBoom) || time.Since(start) > 50*time.Millisecond {
			t.Fatalf("err %v after %v", err, time.Since(start))
		}
	})
}

func TestFallback(t *testing.T) {
	t.Run("static", func(t *testing.T) {
		obs := &recorder{}
		c := mustChain(t, resilience.WithObserver(obs))
		s := &scripted{}
		s.fail.Store(true)
		e := resilience.Wrap(c, resilience.Spec[string, string]{Fallback: resilience.StaticFallback[string](nil, "default")}, s.call)
		if got, err := e(context.Background(), "x"); err != nil || got != "default" {
			t.Fatalf("got %q, %v", got, err)
		}
		if obs.fallbacks != 1 {
			t.Fatalf("fallbacks observed %d", obs.fallbacks)
		}
	})
	t.Run("last good", func(t *testing.T) {
		c := mustChain(t)
		s := &scripted{}
		e := resilience.Wrap(c, resilience.Spec[string, string]{
			Fallback: resilience.LastGoodFallback[string, string](nil, func(r string) string { return r }, nil)}, s.call)
		ctx := context.Background()
		s.fail.Store(true)
		if _, err := e(ctx, "a"); !errors.Is(err, errBoom) {
			t.Fatalf("no good response yet: %v", err)
		}
		s.fail.Store(false)
		_, _ = e(ctx, "a")
		s.fail.Store(true)
		if got, err := e(ctx, "a"); err != nil || got != "ok:a" {
			t.Fatalf("got %q, %v", got, err)
		}
		if _, err := e(ctx, "b"); !errors.Is(err, errBoom) {
			t.Fatalf("other key: %v", err)
		}
	})
	t.Run("on rejection by an open breaker", func(t *testing.T) {
		c := mustChain(t, resilience.WithCircuitBreaker(resilience.FailureCount(1, 1), resilience.OpenDelay(time.Minute)))
		s := &scripted{}
		s.fail.Store(true)
		e := resilience.Wrap(c, resilience.Spec[string, string]{Fallback: resilience.StaticFallback[string](nil, "cached")}, s.call)
		_, _ = e(context.Background(), "x")
		if got, err := e(context.Background(), "x"); err != nil || got != "cached" || s.calls.Load() != 1 {
			t.Fatalf("got %q, %v after %d calls", got, err, s.calls.Load())
		}
	})
	t.Run("permanent errors pass", func(t *testing.T) {
		e := resilience.Wrap(mustChain(t), resilience.Spec[string, string]{Fallback: resilience.StaticFallback[string](nil, "default")},
			func(context.Context, string) (string, error) { return "", resilience.Permanent(errBoom) })
		if _, err := e(context.Background(), "x"); !errors.Is(err, errBoom) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestInvalidConfigurationIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  resilience.Option
		want string
	}{
		{"zero timeout", resilience.WithTimeout(0), "timeout must be positive"},
		{"negative timeout", resilience.WithTimeout(-time.Second), "timeout must be positive"},
		{"zero bulkhead", resilience.WithBulkhead(0), "at least 1"},
		{"negative failures", resilience.WithCircuitBreaker(resilience.FailureCount(-1, 5)), "failures must be at least 1"},
		{"window below failures", resilience.WithCircuitBreaker(resilience.FailureCount(5, 2)), "smaller than"},
		{"rate above one", resilience.WithCircuitBreaker(resilience.FailureRate(1.5, 10, time.Second)), "rate must be in"},
		{"zero rate", resilience.WithCircuitBreaker(resilience.FailureRate(0, 10, time.Second)), "rate must be in"},
		{"zero minimum calls", resilience.WithCircuitBreaker(resilience.FailureRate(0.5, 0, time.Second)), "minimum calls"},
		{"zero window", resilience.WithCircuitBreaker(resilience.FailureRate(0.5, 10, 0)), "window must be positive"},
		{"zero open delay", resilience.WithCircuitBreaker(resilience.OpenDelay(0)), "delay must be positive"},
		{"zero probes", resilience.WithCircuitBreaker(resilience.HalfOpenProbes(0)), "at least 1 probe"},
		{"nil classifier", resilience.WithCircuitBreaker(resilience.FailureIf(nil)), "nil classifier"},
		{"zero attempts", resilience.WithRetry(resilience.MaxAttempts(0)), "at least 1 attempt"},
		{"negative backoff", resilience.WithRetry(resilience.Backoff(-time.Second, time.Second)), "initial delay must be positive"},
		{"max below initial", resilience.WithRetry(resilience.Backoff(time.Second, time.Millisecond)), "below the initial"},
		{"jitter above one", resilience.WithRetry(resilience.Jitter(2)), "factor must be in"},
		{"zero retry-after cap", resilience.WithRetry(resilience.MaxRetryAfter(0)), "must be positive"},
		{"empty name", resilience.WithName(""), "empty name"},
		{"nil observer", resilience.WithObserver(nil), "nil observer"},
		{"nil logger", resilience.WithLogger(nil), "nil logger"},
		{"nil breakers", resilience.WithBreakers(nil), "nil breakers"},
		{"nil option", nil, "nil option"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := resilience.NewChain(tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewChain = %v, %v; want an error containing %q", c, err, tc.want)
			}
		})
	}
}

// TestRejectionDoesNotAllocate guards the zero-allocation promise for calls
// refused by an open breaker or a full bulkhead.
func TestRejectionDoesNotAllocate(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	ctx := context.Background()
	open := mustChain(t, resilience.WithCircuitBreaker(resilience.OpenDelay(time.Hour)), resilience.WithBulkhead(10),
		resilience.WithTimeout(time.Second), resilience.WithRetry())
	open.Breakers().Get("k").Open()
	s := &scripted{}
	e := resilience.Wrap(open, resilience.Spec[string, string]{Key: func(string) string { return "k" }, Idempotent: func(string) bool { return true }}, s.call)
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := e(ctx, "x"); err != resilience.ErrBreakerOpen {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("open breaker: %v allocations per rejected call", n)
	}

	full := mustChain(t, resilience.WithBulkhead(1), resilience.WithCircuitBreaker())
	if err := full.Bulkhead().Acquire(); err != nil {
		t.Fatal(err)
	}
	e = resilience.Wrap(full, resilience.Spec[string, string]{}, s.call)
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := e(ctx, "x"); err != resilience.ErrBulkheadFull {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("full bulkhead: %v allocations per rejected call", n)
	}
	if s.calls.Load() != 0 {
		t.Fatal("a rejected call reached the endpoint")
	}
}

func TestTransitionsAreLogged(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := mustChain(t, resilience.WithName("orders"), resilience.WithLogger(logger),
		resilience.WithCircuitBreaker(resilience.FailureCount(1, 1), resilience.OpenDelay(time.Minute)))
	s := &scripted{}
	s.fail.Store(true)
	e := resilience.Wrap(c, resilience.Spec[string, string]{Key: func(string) string { return "orders-1" }}, s.call)
	_, _ = e(context.Background(), "x")
	_, _ = e(context.Background(), "x")
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{
		`level=WARN msg="circuit breaker open" chain=orders key=orders-1 from=closed`,
		`level=DEBUG msg="call rejected" chain=orders key=orders-1 reason="resilience: circuit breaker open"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
