package broker

import "errors"

var (
	// ErrClosed is returned by calls on a closed Broker or Subscription.
	ErrClosed = errors.New("broker: closed")
	// ErrInvalidSubscription wraps every reason Subscribe refuses its
	// arguments: an invalid subscriber id or channel name, no channels, no
	// handler, or bad options.
	ErrInvalidSubscription = errors.New("broker: invalid subscription")
	// ErrHandlerPanic wraps the value of a handler's panic.
	ErrHandlerPanic = errors.New("broker: handler panicked")
)

// permanentError marks an error that retrying cannot cure.
type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Permanent() bool { return true }

// Permanent marks err as one that no retry can cure, such as a payload that
// cannot be decoded: the message goes to the dead-letter channel at once.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, says that retrying
// cannot cure it: an error with a Permanent() bool method that returns
// true, found with errors.As, as net.Error's Timeout is. Errors marked with
// Permanent (here or in package resilience) and the message package's
// validation errors (message.ErrPayloadTooLarge and the like) are such
// errors, so packages recognise each other's markers without importing
// each other.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// unavailableError marks an error caused by a dependency that cannot be
// reached for now.
type unavailableError struct{ err error }

func (e unavailableError) Error() string     { return e.err.Error() }
func (e unavailableError) Unwrap() error     { return e.err }
func (e unavailableError) Unavailable() bool { return true }

// Unavailable marks err as caused by a dependency of the handler that
// cannot be reached for now (its database restarting or failing over, a
// server refusing connections), not by the message: such a failure does
// not count toward the subscription's attempts, and the message is tried
// again with backoff for as long as WithMaxUnavailable allows, so that an
// outage of a few seconds or minutes delays messages instead of
// dead-lettering them. The inbox marks its database's connection errors
// this way (sqldb.IsUnavailable). Unavailable(nil) is nil.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return unavailableError{err}
}

// IsUnavailable reports whether err, or an error it wraps, has an
// Unavailable() bool method that returns true, found with errors.As, as
// IsPermanent finds Permanent.
func IsUnavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}
