package backoff

import (
	"context"
	"testing"
	"time"
)

func TestExponential(t *testing.T) {
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{0, 100 * time.Millisecond}, {1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {1 << 30, time.Second}} {
		if got := Exponential(100*time.Millisecond, time.Second, tc.failures); got != tc.want {
			t.Errorf("Exponential after %d failures = %v, want %v", tc.failures, got, tc.want)
		}
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := Jitter(time.Second); d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("Jitter(1s) = %v, outside [500ms, 1s]", d)
		}
	}
	if Jitter(1) != 1 || Jitter(0) != 0 {
		t.Error("Jitter of a tiny wait changed it")
	}
}

func TestSleep(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	if !Sleep(ctx, time.Millisecond) {
		t.Fatal("Sleep stopped early")
	}
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) || time.Since(start) > time.Second {
		t.Fatal("Sleep did not stop with its context")
	}
}
