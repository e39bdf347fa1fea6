// Package httpx carries Courier's resilience policies to REST: on the client
// side a Transport (an http.RoundTripper) that applies a resilience.Chain to
// every request, and on the server side a handler wrapper with request
// timeouts and a concurrency limit, problem+json errors (RFC 9457), and
// health and readiness endpoints.
//
// # Client
//
//	chain, _ := resilience.NewChain(
//		resilience.WithTimeout(2*time.Second),
//		resilience.WithBulkhead(100),
//		resilience.WithCircuitBreaker(resilience.FailureIf(httpx.Failure)),
//		resilience.WithRetry(resilience.RetryIf(httpx.Retryable)))
//	t, _ := httpx.NewTransport(chain)
//	client := &http.Client{Transport: t}
//
// A response whose status counts as a failure (by default 5xx and 429)
// becomes a *StatusError inside the chain, so that the breaker counts it and
// retry repeats it, honouring Retry-After; its body is buffered (up to a
// limit) and closed first. When the chain gives up, the caller receives the
// last such response as an ordinary response, not an error: the Transport
// behaves like any RoundTripper. Rejections (resilience.ErrBreakerOpen,
// resilience.ErrBulkheadFull) and network errors are returned as errors.
//
// Only idempotent requests are retried: by default GET, HEAD, OPTIONS,
// TRACE, PUT and DELETE, and any request with an Idempotency-Key header,
// provided its body can be replayed (no body, or Request.GetBody set, as
// http.NewRequest does for in-memory bodies).
//
// The chain's timeout covers an attempt up to the end of the response body:
// its context is cancelled when the caller closes the body. The bulkhead
// permit is held until the response headers arrive.
//
// Breakers are keyed by the request's host (host:port) unless WithKey says
// otherwise, so that every instance of a service has its own.
package httpx
