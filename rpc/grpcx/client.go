package grpcx

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/courier-go/courier/internal/connurl"
	"github.com/courier-go/courier/resilience"
)

// ClientOption configures the client interceptors.
type ClientOption func(*clientConfig) error

type clientConfig struct {
	key        func(ctx context.Context, method string, cc *grpc.ClientConn) string
	idempotent map[string]bool
	fallback   func(ctx context.Context, method string, req, reply any, err error) error
	lastGood   *LastGood
}

// WithKey selects the circuit breaker of a call (default: the connection's
// target, any password in it hidden). The key names the breaker in logs
// and metric labels: it must hold no secret.
func WithKey(f func(ctx context.Context, method string, cc *grpc.ClientConn) string) ClientOption {
	return func(c *clientConfig) error {
		if f == nil {
			return errors.New("grpcx: WithKey: nil function")
		}
		c.key = f
		return nil
	}
}

// WithIdempotentMethods names the methods ("/package.Service/Method") that
// may be retried.
func WithIdempotentMethods(methods ...string) ClientOption {
	return func(c *clientConfig) error {
		for _, m := range methods {
			if len(m) < 3 || m[0] != '/' {
				return errors.New("grpcx: WithIdempotentMethods: " + strconv.Quote(m) + " is not a full method name like /package.Service/Method")
			}
			c.idempotent[m] = true
		}
		return nil
	}
}

// WithFallback answers failed unary calls: f fills reply and returns nil, or
// returns an error (typically err) when it has nothing to offer. See
// StaticReply and LastGoodReply.
func WithFallback(f func(ctx context.Context, method string, req, reply any, err error) error) ClientOption {
	return func(c *clientConfig) error {
		if f == nil {
			return errors.New("grpcx: WithFallback: nil function")
		}
		c.fallback = f
		return nil
	}
}

// targetKey is the default key of a call's circuit breaker: the
// connection's target, without the secrets a target may hold
// (dns://user:pass@resolver/host), since keys become log fields and
// metric labels.
func targetKey(_ context.Context, _ string, cc *grpc.ClientConn) string {
	t := cc.Target()
	if strings.Contains(t, "@") {
		return connurl.Redacted(t)
	}
	return t
}

func newClientConfig(chain *resilience.Chain, opts []ClientOption) (*clientConfig, error) {
	if chain == nil {
		return nil, errors.New("grpcx: nil chain")
	}
	cfg := &clientConfig{
		key:        targetKey,
		idempotent: map[string]bool{},
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("grpcx: nil client option")
		}
		if err := o(cfg); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// idempotentOption marks a call as safe to retry.
type idempotentOption struct{ grpc.EmptyCallOption }

// Idempotent is a call option marking one call as safe to retry.
func Idempotent() grpc.CallOption { return idempotentOption{} }

func (c *clientConfig) isIdempotent(method string, opts []grpc.CallOption) bool {
	if c.idempotent[method] {
		return true
	}
	for _, o := range opts {
		if _, ok := o.(idempotentOption); ok {
			return true
		}
	}
	return false
}

// rejection is a preallocated status error for a policy's rejection.
type rejection struct {
	st       *status.Status
	sentinel error
}

func (r *rejection) Error() string              { return r.sentinel.Error() }
func (r *rejection) Unwrap() error              { return r.sentinel }
func (r *rejection) GRPCStatus() *status.Status { return r.st }

var (
	errBreakerOpen  = &rejection{status.New(codes.Unavailable, resilience.ErrBreakerOpen.Error()), resilience.ErrBreakerOpen}
	errBulkheadFull = &rejection{status.New(codes.Unavailable, resilience.ErrBulkheadFull.Error()), resilience.ErrBulkheadFull}
)

// asStatus gives rejections a gRPC status, without allocating.
func asStatus(err error) error {
	switch err {
	case resilience.ErrBreakerOpen:
		return errBreakerOpen
	case resilience.ErrBulkheadFull:
		return errBulkheadFull
	}
	return err
}

// pushbackError carries the server's grpc-retry-pushback-ms.
type pushbackError struct {
	error
	after time.Duration
}

func (e *pushbackError) Unwrap() error             { return e.error }
func (e *pushbackError) RetryAfter() time.Duration { return e.after }

// pushbackCall is the trailer an attempt reads the pushback from and room
// for the call's options followed by the one asking for it, in one
// allocation for calls with up to two options of their own (generated
// stubs pass one, grpc.StaticMethod).
type pushbackCall struct {
	trailer metadata.MD
	opts    [3]grpc.CallOption
}

type unaryCall struct {
	method     string
	req, reply any
	cc         *grpc.ClientConn
	invoker    grpc.UnaryInvoker
	opts       []grpc.CallOption
	key        string
	idempotent bool
}

// UnaryClientInterceptor applies chain to unary calls.
func UnaryClientInterceptor(chain *resilience.Chain, opts ...ClientOption) (grpc.UnaryClientInterceptor, error) {
	cfg, err := newClientConfig(chain, opts)
	if err != nil {
		return nil, err
	}
	// The pushback trailer costs an allocation per call (pushbackCall):
	// ask for it only when the chain retries.
	readPushback := chain.Retries()
	attempt := func(ctx context.Context, c unaryCall) (struct{}, error) {
		if !readPushback || !c.idempotent {
			err := c.invoker(ctx, c.method, c.req, c.reply, c.cc, c.opts...)
			if err == nil && cfg.lastGood != nil {
				cfg.lastGood.store(c.method, c.reply)
			}
			return struct{}{}, err
		}
		pc := new(pushbackCall)
		callOpts := append(append(pc.opts[:0], c.opts...), grpc.Trailer(&pc.trailer))
		err := c.invoker(ctx, c.method, c.req, c.reply, c.cc, callOpts...)
		if err == nil && cfg.lastGood != nil {
			cfg.lastGood.store(c.method, c.reply)
		}
		if err != nil {
			if v := pc.trailer.Get("grpc-retry-pushback-ms"); len(v) == 1 {
				if ms, perr := strconv.Atoi(v[0]); perr == nil && ms >= 0 {
					return struct{}{}, &pushbackError{error: err, after: time.Duration(ms) * time.Millisecond}
				}
			}
		}
		return struct{}{}, err
	}
	spec := resilience.Spec[unaryCall, struct{}]{
		Key:        func(c unaryCall) string { return c.key },
		Idempotent: func(c unaryCall) bool { return c.idempotent },
	}
	if cfg.fallback != nil {
		fb, err := resilience.FallbackFunc(Failure, func(ctx context.Context, c unaryCall, err error) (struct{}, error) {
			return struct{}{}, cfg.fallback(ctx, c.method, c.req, c.reply, err)
		})
		if err != nil {
			return nil, err
		}
		spec.Fallback = fb
	}
	call := resilience.Wrap(chain, spec, attempt)
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		_, err := call(ctx, unaryCall{
			method: method, req: req, reply: reply, cc: cc, invoker: invoker, opts: opts,
			key: cfg.key(ctx, method, cc), idempotent: cfg.isIdempotent(method, opts),
		})
		return asStatus(err)
	}, nil
}

type streamCall struct {
	desc       *grpc.StreamDesc
	cc         *grpc.ClientConn
	method     string
	streamer   grpc.Streamer
	opts       []grpc.CallOption
	key        string
	idempotent bool
}

// StreamClientInterceptor applies chain to the opening of streams (see the
// package documentation).
func StreamClientInterceptor(chain *resilience.Chain, opts ...ClientOption) (grpc.StreamClientInterceptor, error) {
	cfg, err := newClientConfig(chain, opts)
	if err != nil {
		return nil, err
	}
	if cfg.fallback != nil {
		return nil, errors.New("grpcx: StreamClientInterceptor: a fallback does not apply to streams")
	}
	open := func(ctx context.Context, c streamCall) (grpc.ClientStream, error) {
		return c.streamer(ctx, c.desc, c.cc, c.method, c.opts...)
	}
	spec := resilience.Spec[streamCall, grpc.ClientStream]{
		Key:        func(c streamCall) string { return c.key },
		Idempotent: func(c streamCall) bool { return c.idempotent },
		Detach: func(s grpc.ClientStream, cancel context.CancelFunc) grpc.ClientStream {
			return &cancelOnEnd{ClientStream: s, cancel: cancel}
		},
	}
	call := resilience.Wrap(chain, spec, open)
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := call(ctx, streamCall{desc: desc, cc: cc, method: method, streamer: streamer, opts: opts,
			key: cfg.key(ctx, method, cc), idempotent: cfg.isIdempotent(method, opts)})
		return s, asStatus(err)
	}, nil
}

// cancelOnEnd releases the stream's timeout when the stream ends.
type cancelOnEnd struct {
	grpc.ClientStream
	cancel context.CancelFunc
}

func (s *cancelOnEnd) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.cancel()
	}
	return err
}

// Failure is a breaker classifier for gRPC: Unavailable, DeadlineExceeded,
// ResourceExhausted, Aborted, Internal, Unknown and DataLoss count as
// failures of the server; the other codes (InvalidArgument, NotFound,
// Canceled ...) do not. Errors without a status use
// resilience.DefaultFailure.
func Failure(err error) bool {
	if err == nil || !resilience.DefaultFailure(err) {
		return false
	}
	st, ok := status.FromError(err)
	if !ok {
		return true
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted,
		codes.Internal, codes.Unknown, codes.DataLoss:
		return true
	}
	return false
}

// Retryable is a retry classifier for gRPC: Unavailable, ResourceExhausted
// and Aborted, and an attempt cut short by the chain's timeout.
func Retryable(err error) bool {
	if errors.Is(err, resilience.ErrTimeout) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	return false
}
