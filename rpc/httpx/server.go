package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/courier-go/courier/resilience"
)

// ServerOption configures Handler.
type ServerOption func(*serverConfig) error

type serverConfig struct {
	timeout    time.Duration
	limit      int
	retryAfter time.Duration
	logger     *slog.Logger
	// operation and tracing are WithServerTracing's; tracing is nil
	// without it.
	operation string
	tracing   []otelhttp.Option
}

// WithRequestTimeout gives each request a context that ends after d. A
// handler that returns without writing after that gets a 503 problem
// response. Handlers must watch their request's context: the timeout cannot
// stop one that does not.
func WithRequestTimeout(d time.Duration) ServerOption {
	return func(c *serverConfig) error {
		if d <= 0 {
			return fmt.Errorf("httpx: WithRequestTimeout: timeout must be positive, got %v", d)
		}
		c.timeout = d
		return nil
	}
}

// WithMaxConcurrent serves at most n requests at a time; the excess is
// answered at once with 503 and a problem body, with Retry-After.
func WithMaxConcurrent(n int) ServerOption {
	return func(c *serverConfig) error {
		if n < 1 {
			return fmt.Errorf("httpx: WithMaxConcurrent: limit must be at least 1, got %d", n)
		}
		c.limit = n
		return nil
	}
}

// WithOverloadRetryAfter sets the Retry-After sent with overload responses
// (default 1s, rounded up to whole seconds).
func WithOverloadRetryAfter(d time.Duration) ServerOption {
	return func(c *serverConfig) error {
		if d <= 0 {
			return fmt.Errorf("httpx: WithOverloadRetryAfter: must be positive, got %v", d)
		}
		c.retryAfter = d
		return nil
	}
}

// WithLogger logs refused and timed-out requests to l (default
// slog.Default()).
func WithLogger(l *slog.Logger) ServerOption {
	return func(c *serverConfig) error {
		if l == nil {
			return errors.New("httpx: WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// Handler wraps h with the server-side limits: first the concurrency limit,
// then the request timeout; with WithServerTracing, a span around both.
func Handler(h http.Handler, opts ...ServerOption) (http.Handler, error) {
	if h == nil {
		return nil, errors.New("httpx: Handler: nil handler")
	}
	cfg := serverConfig{retryAfter: time.Second, logger: slog.Default()}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("httpx: Handler: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.timeout > 0 {
		h = timeoutHandler(h, cfg.timeout, cfg.logger)
	}
	if cfg.limit > 0 {
		b, err := resilience.NewBulkhead(cfg.limit)
		if err != nil {
			return nil, fmt.Errorf("httpx: Handler: %w", err)
		}
		h = limitHandler(h, b, cfg)
	}
	if cfg.tracing != nil {
		h = otelhttp.NewHandler(h, cfg.operation, cfg.tracing...)
	}
	return h, nil
}

func limitHandler(next http.Handler, b *resilience.Bulkhead, cfg serverConfig) http.Handler {
	retryAfter := fmt.Sprint(int((cfg.retryAfter + time.Second - 1) / time.Second))
	detail := fmt.Sprintf("more than %d requests in progress", b.Max())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := b.Acquire(); err != nil {
			if cfg.logger.Enabled(r.Context(), slog.LevelDebug) {
				cfg.logger.DebugContext(r.Context(), "request refused: overloaded", slog.String("path", r.URL.Path))
			}
			w.Header().Set("Retry-After", retryAfter)
			WriteProblem(w, Problem{Type: ProblemOverloaded, Title: "Overloaded", Status: http.StatusServiceUnavailable,
				Detail: detail, Instance: r.URL.Path})
			return
		}
		defer b.Release()
		next.ServeHTTP(w, r)
	})
}

func timeoutHandler(next http.Handler, d time.Duration, logger *slog.Logger) http.Handler {
	detail := fmt.Sprintf("the request took longer than %v", d)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		tw := &trackingWriter{ResponseWriter: w}
		next.ServeHTTP(tw, r.WithContext(ctx))
		if !tw.written() && errors.Is(ctx.Err(), context.DeadlineExceeded) && r.Context().Err() == nil {
			logger.WarnContext(r.Context(), "request timed out", slog.String("path", r.URL.Path), slog.Duration("timeout", d))
			WriteProblem(w, Problem{Type: ProblemTimeout, Title: "Timeout", Status: http.StatusServiceUnavailable,
				Detail: detail, Instance: r.URL.Path})
		}
	})
}

// trackingWriter remembers whether the handler wrote anything.
type trackingWriter struct {
	http.ResponseWriter
	mu    sync.Mutex
	wrote bool
}

func (w *trackingWriter) mark() {
	w.mu.Lock()
	w.wrote = true
	w.mu.Unlock()
}

func (w *trackingWriter) written() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wrote
}

func (w *trackingWriter) WriteHeader(code int) {
	w.mark()
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(p []byte) (int, error) {
	w.mark()
	return w.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController access to the underlying writer
// (flushing, deadlines, hijacking).
func (w *trackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
