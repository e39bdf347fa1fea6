package resilience

import (
	"errors"
	"time"
)

// Sentinel errors returned by the policies. They are preallocated so that a
// rejection allocates nothing; test for them with errors.Is.
var (
	// ErrBreakerOpen rejects a call, without a network call, while the
	// circuit breaker of its key is open (or half-open with all probes out).
	ErrBreakerOpen = errors.New("resilience: circuit breaker open")
	// ErrBulkheadFull rejects a call at once when the maximum number of
	// outstanding calls is reached.
	ErrBulkheadFull = errors.New("resilience: bulkhead full")
	// ErrTimeout marks an attempt cut short by the Chain's timeout. The
	// error returned wraps both ErrTimeout and context.DeadlineExceeded.
	ErrTimeout = errors.New("resilience: timeout")
)

// Rejected reports whether err is a rejection by a policy (an open breaker
// or a full bulkhead), that is a call that never reached the network.
func Rejected(err error) bool {
	return errors.Is(err, ErrBreakerOpen) || errors.Is(err, ErrBulkheadFull)
}

// RetryAfterError is implemented by errors that carry the remote side's
// advice on when to try again (HTTP Retry-After, gRPC retry pushback).
type RetryAfterError interface {
	error
	RetryAfter() time.Duration
}

// RetryAfter returns the delay advised by the first error in err's chain
// that implements RetryAfterError, and whether there was one.
func RetryAfter(err error) (time.Duration, bool) {
	var ra RetryAfterError
	if errors.As(err, &ra) {
		if d := ra.RetryAfter(); d > 0 {
			return d, true
		}
	}
	return 0, false
}

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Permanent() bool { return true }

// Permanent marks err as not worth retrying and not a failure of the remote
// side (a validation error, a missing resource). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, has a
// Permanent() bool method that returns true, found with errors.As as
// net.Error's Timeout is: errors marked with Permanent here or in package
// broker, and the message package's validation errors.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}
