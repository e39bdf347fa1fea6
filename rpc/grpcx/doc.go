// Package grpcx carries Courier's resilience policies to gRPC: client
// interceptors (unary and streaming) that apply a resilience.Chain, server
// interceptors for a concurrency limit and deadlines, and the standard gRPC
// health service.
//
// # Client
//
//	chain, _ := resilience.NewChain(
//		resilience.WithTimeout(2*time.Second),
//		resilience.WithBulkhead(100),
//		resilience.WithCircuitBreaker(resilience.FailureIf(grpcx.Failure)),
//		resilience.WithRetry(resilience.RetryIf(grpcx.Retryable)))
//	unary, _ := grpcx.UnaryClientInterceptor(chain, grpcx.WithIdempotentMethods("/orders.Orders/Get"))
//	stream, _ := grpcx.StreamClientInterceptor(chain)
//	conn, _ := grpc.NewClient(target, grpc.WithChainUnaryInterceptor(unary), grpc.WithChainStreamInterceptor(stream), ...)
//
// Unary calls get every policy. The chain's timeout becomes the call's
// deadline, which gRPC propagates to the server, so that the server's
// context ends too. Only idempotent calls are retried: methods named with
// WithIdempotentMethods, or calls made with the Idempotent() call option.
// A server's pushback (the grpc-retry-pushback-ms trailer) is honoured like
// HTTP's Retry-After. Rejections are returned as status errors with code
// Unavailable that still match resilience.ErrBreakerOpen and
// resilience.ErrBulkheadFull with errors.Is, preallocated so that a
// rejection allocates nothing.
//
// Streams get the policies when they are opened: the breaker records
// whether the stream could be opened, the bulkhead bounds streams being
// opened, retry reopens an idempotent stream that could not be opened, and
// the timeout bounds the whole stream (its context ends when the stream
// ends or the timeout passes). A fallback does not apply to streams.
//
// Breakers are keyed by the connection's target unless WithKey says
// otherwise.
//
// gRPC's own retry (service config) should stay off on connections that use
// these interceptors, or attempts multiply.
package grpcx
