package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Health serves liveness (/healthz) and readiness (/readyz). Liveness
// answers 200 while the process serves HTTP at all; readiness answers 200
// only when the service is marked ready and every readiness check passes,
// else 503 with a problem body naming the failed checks. It is safe for
// concurrent use.
type Health struct {
	ready   atomic.Bool
	timeout time.Duration

	mu     sync.Mutex
	checks map[string]func(context.Context) error
}

// NewHealth returns a Health that is ready, with no checks; each check gets
// timeout (positive) to answer.
func NewHealth(timeout time.Duration) (*Health, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("httpx: NewHealth: check timeout must be positive, got %v", timeout)
	}
	h := &Health{timeout: timeout, checks: map[string]func(context.Context) error{}}
	h.ready.Store(true)
	return h, nil
}

// SetReady marks the service ready or not (not ready while starting up or
// draining before shutdown).
func (h *Health) SetReady(ready bool) { h.ready.Store(ready) }

// AddCheck adds a readiness check (a database ping, a broker connection).
// Checks run concurrently on each /readyz request and must return when
// their context ends.
func (h *Health) AddCheck(name string, check func(ctx context.Context) error) error {
	if name == "" || check == nil {
		return errors.New("httpx: AddCheck: need a name and a check")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks[name] = check
	return nil
}

// Register serves /healthz and /readyz on mux.
func (h *Health) Register(mux *http.ServeMux) {
	mux.Handle("GET /healthz", h.Liveness())
	mux.Handle("GET /readyz", h.Readiness())
}

// Liveness is the /healthz handler.
func (h *Health) Liveness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
}

// Readiness is the /readyz handler.
func (h *Health) Readiness() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		failed := h.check(r.Context())
		if !h.ready.Load() {
			failed = append([]string{"not ready"}, failed...)
		}
		if len(failed) > 0 {
			WriteProblem(w, Problem{Type: ProblemNotReady, Title: "Not ready", Status: http.StatusServiceUnavailable,
				Detail: fmt.Sprint(failed), Instance: r.URL.Path})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ready"})
	})
}

// check runs the checks concurrently and returns "name: error" for each
// failure, sorted.
func (h *Health) check(ctx context.Context) []string {
	h.mu.Lock()
	checks := make(map[string]func(context.Context) error, len(h.checks))
	for k, v := range h.checks {
		checks[k] = v
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	var (
		mu     sync.Mutex
		failed []string
		wg     sync.WaitGroup
	)
	for name, c := range checks {
		wg.Go(func() {
			if err := c(ctx); err != nil {
				mu.Lock()
				failed = append(failed, name+": "+err.Error())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	sort.Strings(failed)
	return failed
}
