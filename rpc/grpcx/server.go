package grpcx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/courier-go/courier/resilience"
)

// Limits are server-side guards: a bound on concurrent calls (the excess is
// refused at once with ResourceExhausted and a retry pushback) and a
// maximum deadline (a call arriving with none, or a later one, gets it).
// Install both interceptors; they share the bound. Limits is safe for
// concurrent use.
type Limits struct {
	bulkhead    *resilience.Bulkhead
	maxDeadline time.Duration
	pushback    string
	logger      *slog.Logger
	overloaded  error
}

// ServerOption configures Limits.
type ServerOption func(*Limits) error

// WithMaxConcurrent serves at most n calls (unary calls and open streams)
// at a time.
func WithMaxConcurrent(n int) ServerOption {
	return func(l *Limits) error {
		b, err := resilience.NewBulkhead(n)
		if err != nil {
			return fmt.Errorf("grpcx: WithMaxConcurrent: %w", err)
		}
		l.bulkhead = b
		return nil
	}
}

// WithMaxDeadline gives every call at most d: calls without a deadline, or
// with a later one, get d.
func WithMaxDeadline(d time.Duration) ServerOption {
	return func(l *Limits) error {
		if d <= 0 {
			return fmt.Errorf("grpcx: WithMaxDeadline: must be positive, got %v", d)
		}
		l.maxDeadline = d
		return nil
	}
}

// WithPushback sets the retry pushback sent with overload refusals
// (default 100ms).
func WithPushback(d time.Duration) ServerOption {
	return func(l *Limits) error {
		if d <= 0 {
			return fmt.Errorf("grpcx: WithPushback: must be positive, got %v", d)
		}
		l.pushback = strconv.FormatInt(d.Milliseconds(), 10)
		return nil
	}
}

// WithLogger logs refusals (at debug level) to l.
func WithLogger(l *slog.Logger) ServerOption {
	return func(s *Limits) error {
		if l == nil {
			return errors.New("grpcx: WithLogger: nil logger")
		}
		s.logger = l
		return nil
	}
}

// NewLimits builds server limits; at least one of WithMaxConcurrent and
// WithMaxDeadline is required.
func NewLimits(opts ...ServerOption) (*Limits, error) {
	l := &Limits{pushback: "100", logger: slog.Default()}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("grpcx: NewLimits: nil option")
		}
		if err := o(l); err != nil {
			return nil, err
		}
	}
	if l.bulkhead == nil && l.maxDeadline == 0 {
		return nil, errors.New("grpcx: NewLimits: no limit configured (WithMaxConcurrent, WithMaxDeadline)")
	}
	if l.bulkhead != nil {
		l.overloaded = status.Errorf(codes.ResourceExhausted, "server overloaded: more than %d calls in progress", l.bulkhead.Max())
	}
	return l, nil
}

// InUse returns the number of calls in progress (0 without a bound).
func (l *Limits) InUse() int {
	if l.bulkhead == nil {
		return 0
	}
	return l.bulkhead.InUse()
}

func (l *Limits) enter(ctx context.Context, method string) (context.Context, func(), error) {
	release := func() {}
	if l.bulkhead != nil {
		if err := l.bulkhead.Acquire(); err != nil {
			_ = grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", l.pushback))
			if l.logger.Enabled(ctx, slog.LevelDebug) {
				l.logger.DebugContext(ctx, "call refused: overloaded", slog.String("method", method))
			}
			return ctx, nil, l.overloaded
		}
		release = l.bulkhead.Release
	}
	if l.maxDeadline > 0 {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > l.maxDeadline {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, l.maxDeadline)
			r := release
			release = func() { cancel(); r() }
		}
	}
	return ctx, release, nil
}

// Unary is the unary server interceptor.
func (l *Limits) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, release, err := l.enter(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		defer release()
		return handler(ctx, req)
	}
}

// Stream is the stream server interceptor.
func (l *Limits) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, release, err := l.enter(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		defer release()
		return handler(srv, &contextStream{ServerStream: ss, ctx: ctx})
	}
}

type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// RegisterHealth registers the standard gRPC health service
// (grpc.health.v1.Health) on s and returns it; set each service's status
// with SetServingStatus ("" is the whole server), and call Shutdown when
// draining.
func RegisterHealth(s grpc.ServiceRegistrar) *health.Server {
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	return h
}
