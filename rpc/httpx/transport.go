package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/courier-go/courier/resilience"
)

// Transport is an http.RoundTripper that applies a resilience.Chain to every
// request. It is safe for concurrent use.
type Transport struct {
	chain *resilience.Chain
	call  resilience.Endpoint[*http.Request, *http.Response]
}

// TransportOption configures a Transport.
type TransportOption func(*transportConfig) error

type transportConfig struct {
	base          http.RoundTripper
	key           func(*http.Request) string
	idempotent    func(*http.Request) bool
	failureStatus func(int) bool
	fallback      *resilience.Fallback[*http.Request, *http.Response]
	maxErrorBody  int64
	// tracing is otelhttp's options if WithTracing was given; nil
	// otherwise.
	tracing []otelhttp.Option
}

// WithBase sends requests through rt (default http.DefaultTransport).
func WithBase(rt http.RoundTripper) TransportOption {
	return func(c *transportConfig) error {
		if rt == nil {
			return errors.New("httpx: WithBase: nil RoundTripper")
		}
		c.base = rt
		return nil
	}
}

// WithKey selects the circuit breaker of a request (default: its URL's
// host, that is one breaker per instance).
func WithKey(f func(*http.Request) string) TransportOption {
	return func(c *transportConfig) error {
		if f == nil {
			return errors.New("httpx: WithKey: nil function")
		}
		c.key = f
		return nil
	}
}

// WithIdempotent decides which requests may be retried (default:
// Idempotent).
func WithIdempotent(f func(*http.Request) bool) TransportOption {
	return func(c *transportConfig) error {
		if f == nil {
			return errors.New("httpx: WithIdempotent: nil function")
		}
		c.idempotent = f
		return nil
	}
}

// WithFailureStatus decides which response statuses are failures (default:
// FailureStatus).
func WithFailureStatus(f func(code int) bool) TransportOption {
	return func(c *transportConfig) error {
		if f == nil {
			return errors.New("httpx: WithFailureStatus: nil function")
		}
		c.failureStatus = f
		return nil
	}
}

// WithFallback answers failed requests from f (see StaticResponse and
// resilience.FallbackFunc).
func WithFallback(f *resilience.Fallback[*http.Request, *http.Response]) TransportOption {
	return func(c *transportConfig) error {
		if f == nil {
			return errors.New("httpx: WithFallback: nil fallback")
		}
		c.fallback = f
		return nil
	}
}

// WithMaxErrorBody bounds how much of a failed response's body is kept
// (default 64 KiB); the rest is discarded.
func WithMaxErrorBody(n int64) TransportOption {
	return func(c *transportConfig) error {
		if n < 0 {
			return fmt.Errorf("httpx: WithMaxErrorBody: negative size %d", n)
		}
		c.maxErrorBody = n
		return nil
	}
}

// FailureStatus is the default failure classification of statuses: every
// 5xx except 501 Not Implemented, and 429 Too Many Requests.
func FailureStatus(code int) bool {
	return (code >= 500 && code != http.StatusNotImplemented) || code == http.StatusTooManyRequests
}

// Idempotent is the default retry eligibility: a safe or idempotent method,
// or an Idempotency-Key header, and a body that can be sent again.
func Idempotent(r *http.Request) bool {
	if r.Body != nil && r.Body != http.NoBody && r.GetBody == nil {
		return false
	}
	switch r.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Header.Get("Idempotency-Key") != ""
}

// NewTransport builds a Transport applying chain.
func NewTransport(chain *resilience.Chain, opts ...TransportOption) (*Transport, error) {
	if chain == nil {
		return nil, errors.New("httpx: NewTransport: nil chain")
	}
	cfg := transportConfig{
		base:          http.DefaultTransport,
		key:           func(r *http.Request) string { return r.URL.Host },
		idempotent:    Idempotent,
		failureStatus: FailureStatus,
		maxErrorBody:  64 << 10,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("httpx: NewTransport: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	base, failure, limit := traced(cfg.base, cfg.tracing), cfg.failureStatus, cfg.maxErrorBody
	attempt := func(ctx context.Context, req *http.Request) (*http.Response, error) {
		r := req
		if ctx != req.Context() {
			r = req.WithContext(ctx)
			if resilience.Attempt(ctx) > 1 && req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, resilience.Permanent(fmt.Errorf("httpx: %s %s: rewind body: %w", req.Method, req.URL.Redacted(), err))
				}
				r.Body = body
			}
		}
		resp, err := base.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		if !failure(resp.StatusCode) {
			return resp, nil
		}
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, limit))
		resp.Body.Close()
		if rerr != nil {
			return nil, fmt.Errorf("httpx: %s %s: read %s response: %w", req.Method, req.URL.Redacted(), resp.Status, rerr)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		return nil, &StatusError{Response: resp}
	}
	spec := resilience.Spec[*http.Request, *http.Response]{
		Key:        cfg.key,
		Idempotent: cfg.idempotent,
		Fallback:   cfg.fallback,
		Detach: func(resp *http.Response, cancel context.CancelFunc) *http.Response {
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp
		},
	}
	return &Transport{chain: chain, call: resilience.Wrap(chain, spec, attempt)}, nil
}

// Chain returns the chain the Transport applies, to read its state.
func (t *Transport) Chain() *resilience.Chain { return t.chain }

// RoundTrip sends req through the policies. A failed response that the
// policies could not cure is returned as a response, not an error.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.call(req.Context(), req)
	if err == nil {
		return resp, nil
	}
	if req.Body != nil {
		req.Body.Close()
	}
	if se, ok := errors.AsType[*StatusError](err); ok {
		return se.Response, nil
	}
	return nil, err
}

// StatusError is a response whose status counts as a failure, as seen by
// the policies. Its body is buffered.
type StatusError struct {
	Response *http.Response
}

// Error returns the request and the status.
func (e *StatusError) Error() string {
	return fmt.Sprintf("httpx: %s %s: %s", e.Response.Request.Method, e.Response.Request.URL.Redacted(), e.Response.Status)
}

// RetryAfter returns the delay the server asked for in a Retry-After
// header (seconds or an HTTP date), or 0.
func (e *StatusError) RetryAfter() time.Duration {
	return ParseRetryAfter(e.Response.Header.Get("Retry-After"), time.Now())
}

// ParseRetryAfter parses a Retry-After value, delay-seconds or HTTP-date,
// relative to now; it returns 0 for an empty or invalid value.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now))
	}
	return 0
}

// Failure is a breaker classifier for chains used with a Transport: a
// failed response (a *StatusError) or a transport error counts, a caller's
// cancellation or a Permanent error does not.
func Failure(err error) bool { return resilience.DefaultFailure(err) }

// Retryable is a retry classifier for chains used with a Transport: network
// errors, timeouts, 429, 502, 503 and 504 are worth another attempt; other
// failed statuses (500) are not.
func Retryable(err error) bool {
	if se, ok := errors.AsType[*StatusError](err); ok {
		switch se.Response.StatusCode {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	return true
}

// StaticResponse is a fallback answering every failed request with a fresh
// response of the given status, header and body.
func StaticResponse(status int, header http.Header, body []byte) *resilience.Fallback[*http.Request, *http.Response] {
	f, _ := resilience.FallbackFunc(nil, func(_ context.Context, req *http.Request, _ error) (*http.Response, error) {
		return &http.Response{
			Status:        strconv.Itoa(status) + " " + http.StatusText(status),
			StatusCode:    status,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        header.Clone(),
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Request:       req,
		}, nil
	})
	return f
}

// cancelOnClose ends the attempt's timeout when the body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
