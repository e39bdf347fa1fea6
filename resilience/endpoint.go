package resilience

import "context"

// Endpoint is one remote call: a request in, a response or an error out.
// Adapters build an Endpoint once per client (the request carries what
// varies per call), so wrapping it in policies costs nothing per call.
type Endpoint[Req, Resp any] func(ctx context.Context, req Req) (Resp, error)

// Middleware wraps an Endpoint with a policy.
type Middleware[Req, Resp any] func(Endpoint[Req, Resp]) Endpoint[Req, Resp]

// Spec tells a Chain what it needs to know about one kind of request.
// Every field is optional.
type Spec[Req, Resp any] struct {
	// Key selects the circuit breaker of a request (an instance address, a
	// host). Nil: every request shares the breaker with key "".
	Key func(Req) string
	// Idempotent reports whether a request may be sent more than once.
	// Retry applies only to idempotent requests; nil means none is.
	Idempotent func(Req) bool
	// Fallback, when set, replaces a failed outcome (see Fallback).
	Fallback *Fallback[Req, Resp]
	// Detach, when set, hands the cancel function of the attempt's timeout
	// to a successful response instead of calling it when the attempt
	// returns: for responses that are still read after the call returns
	// (an HTTP body), Detach must arrange for cancel to be called when the
	// response is finished with.
	Detach func(resp Resp, cancel context.CancelFunc) Resp
}

// Wrap applies c's policies to e in the documented order: fallback, retry,
// circuit breaker, bulkhead, timeout. Policies c does not configure are left
// out. Wrap is called once per client; the returned Endpoint is safe for
// concurrent use.
func Wrap[Req, Resp any](c *Chain, spec Spec[Req, Resp], e Endpoint[Req, Resp]) Endpoint[Req, Resp] {
	if c.timeout > 0 {
		e = timeoutMiddleware(c, spec, e)
	}
	if c.bulkhead != nil {
		e = bulkheadMiddleware(c, spec, e)
	}
	if c.breakers != nil {
		e = breakerMiddleware(c, spec, e)
	}
	if c.retry != nil && spec.Idempotent != nil {
		e = retryMiddleware(c, spec, e)
	}
	if spec.Fallback != nil {
		e = spec.Fallback.middleware(c, spec, e)
	}
	return e
}
