// Package resilience guards synchronous remote calls with five policies —
// fallback, retry, circuit breaker, bulkhead and timeout — written as
// middleware around an Endpoint, in the manner of go-kit's endpoint layering
// (without the dependency).
//
// # Order of composition
//
// A Chain always composes its policies in this fixed order, outermost first:
//
//	fallback → retry → circuit breaker → bulkhead → timeout → (balancer → instance) → endpoint
//
// Each policy's place is chosen for what it must see:
//
//   - fallback sees the final outcome, after every retry, and replaces a
//     failure by a static value or the last good response;
//   - retry repeats the whole inner chain, so every attempt asks the
//     breaker again (an open breaker stops the retries at once) and gets
//     its own bulkhead permit and its own timeout;
//   - the circuit breaker counts each attempt's outcome, and rejects without
//     a network call while open; breakers are keyed (per instance, per
//     host), see Breakers;
//   - the bulkhead bounds outstanding attempts; an excess attempt fails at
//     once with ErrBulkheadFull;
//   - the timeout bounds one attempt, cancelling the attempt's context.
//
// Service discovery adds a balancer and the instance below the timeout;
// Breakers.Allow lets a balancer skip instances whose breaker is open.
//
// # Built on failsafe-go, without its executor
//
// The circuit breaker (count- and time-windowed failure thresholds, minimum
// calls, half-open probes) is failsafe-go's. Courier drives it through its
// standalone permit API (TryAcquirePermit, RecordSuccess, RecordFailure)
// rather than through failsafe.Executor: the executor allocates an execution
// object and closures on every call, including a rejected one, while the
// permit API does not. The bulkhead is an atomic counter of permits. So a
// call rejected by an open breaker or a full bulkhead costs a mutex or an
// atomic load and returns a preallocated sentinel error, with no allocation.
// Timeout, retry and fallback are a few lines over context.Context each and
// need no library.
//
// # What counts as a failure
//
// Policies see errors only. Adapters turn failed responses into errors
// (rpc/httpx turns a 503 into a *httpx.StatusError) and classify them: the
// breaker's classifier (WithFailureIf) decides what counts against an
// instance, the retry's (RetryIf) what is worth repeating. An error marked
// with Permanent is never retried and, by default, never counts as a
// failure of the remote side. A caller's own cancellation never counts.
// An outcome that does not count as a failure is recorded as a success:
// the breaker has no neutral outcome, and a half-open breaker must get its
// probe permit back. So a probe cancelled by its caller closes a half-open
// breaker; the next failures reopen it.
//
// # Observability
//
// Breaker transitions, rejections, retries, timeouts and fallbacks are
// reported to an Observer (resilience/metrics exports them to Prometheus)
// and logged with log/slog. Breakers.State, Breakers.Snapshot and
// Bulkhead.InUse read the current state.
//
// All types are safe for concurrent use.
package resilience
