package message

import "fmt"

// Sentinel errors returned (wrapped) by validation. Test with errors.Is.
//
// Each has a Permanent method that reports true: a message that fails
// validation fails it again however often it is retried, and the packages
// that retry (broker, resilience, outbox) recognise that by the method,
// without knowing these errors.
var (
	// ErrEmptyDestination means a message was sent to a channel with no name.
	ErrEmptyDestination error = invalid("message: empty destination")
	// ErrInvalidChannel means a channel or subscriber name has characters
	// or a length that some broker cannot carry.
	ErrInvalidChannel error = invalid("message: invalid channel name")
	// ErrPayloadTooLarge means the payload is over Limits.MaxPayloadBytes.
	ErrPayloadTooLarge error = invalid("message: payload too large")
	// ErrHeadersTooLarge means the headers are over Limits.MaxHeaderBytes.
	ErrHeadersTooLarge error = invalid("message: headers too large")
	// ErrInvalidHeader means a header has an empty name.
	ErrInvalidHeader error = invalid("message: invalid header")
	// ErrMissingID means a message has no ID where one is required.
	ErrMissingID error = invalid("message: missing id")
)

// invalidError is a validation error: no retry cures it.
type invalidError struct{ text string }

func invalid(text string) error { return &invalidError{text} }

func (e *invalidError) Error() string { return e.text }

// Permanent reports true: a retry cannot make an invalid message valid.
func (e *invalidError) Permanent() bool { return true }

// Default limits, used where a Limits field is zero. A 1 MiB payload is the
// largest that every supported broker carries with its default settings.
const (
	DefaultMaxPayloadBytes = 1 << 20
	DefaultMaxHeaderBytes  = 64 << 10
)

// MaxNameLength is the longest channel or subscriber name accepted: Kafka's
// limit for topic names, the strictest of the supported brokers.
const MaxNameLength = 249

// Limits bound the size of a message. A zero field takes its default.
type Limits struct {
	// MaxPayloadBytes is the largest payload accepted.
	MaxPayloadBytes int
	// MaxHeaderBytes is the largest total of header names and values.
	MaxHeaderBytes int
}

func (l Limits) maxPayload() int {
	if l.MaxPayloadBytes > 0 {
		return l.MaxPayloadBytes
	}
	return DefaultMaxPayloadBytes
}

func (l Limits) maxHeaders() int {
	if l.MaxHeaderBytes > 0 {
		return l.MaxHeaderBytes
	}
	return DefaultMaxHeaderBytes
}

// Validate reports whether the limits themselves are usable: negative
// values are refused.
func (l Limits) Validate() error {
	if l.MaxPayloadBytes < 0 || l.MaxHeaderBytes < 0 {
		return fmt.Errorf("message: limits must not be negative (payload %d, headers %d)", l.MaxPayloadBytes, l.MaxHeaderBytes)
	}
	return nil
}

// Check reports whether m fits the limits and is well formed: it has an ID,
// no header with an empty name, and payload and headers within bounds.
func (l Limits) Check(m *Message) error {
	if m == nil {
		return fmt.Errorf("%w: nil message", ErrMissingID)
	}
	if m.ID == "" {
		return ErrMissingID
	}
	if n, limit := len(m.Payload), l.maxPayload(); n > limit {
		return fmt.Errorf("%w: message %s has %d bytes of payload, over the limit of %d bytes", ErrPayloadTooLarge, m.ID, n, limit)
	}
	if _, ok := m.Headers[""]; ok {
		return fmt.Errorf("%w: message %s has a header with an empty name", ErrInvalidHeader, m.ID)
	}
	if n, limit := m.Headers.size(), l.maxHeaders(); n > limit {
		return fmt.Errorf("%w: message %s has %d bytes of headers, over the limit of %d bytes", ErrHeadersTooLarge, m.ID, n, limit)
	}
	return nil
}

// ValidateChannel reports whether name can serve as a channel or subscriber
// name on every supported broker: 1 to MaxNameLength characters from
// [A-Za-z0-9._-], with no leading, trailing or doubled dot.
func ValidateChannel(name string) error {
	if name == "" {
		return ErrEmptyDestination
	}
	if len(name) > MaxNameLength {
		return fmt.Errorf("%w: %d characters in %.20q..., at most %d", ErrInvalidChannel, len(name), name, MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		case c == '.':
			if i == 0 || i == len(name)-1 || name[i-1] == '.' {
				return fmt.Errorf("%w: %q has an empty dot-separated part", ErrInvalidChannel, name)
			}
		default:
			return fmt.Errorf("%w: %q contains %q; use letters, digits, '.', '_' and '-'", ErrInvalidChannel, name, rune(c))
		}
	}
	return nil
}
