package message

import (
	"maps"
	"time"
)

// Headers are a message's string key/value metadata.
type Headers map[string]string

// Get returns the value of header k, or "" when it is absent. It is safe on a
// nil Headers.
func (h Headers) Get(k string) string { return h[k] }

// Lookup returns the value of header k and whether it is present.
func (h Headers) Lookup(k string) (string, bool) {
	v, ok := h[k]
	return v, ok
}

// Clone returns a copy of h that shares nothing with it.
func (h Headers) Clone() Headers {
	if h == nil {
		return nil
	}
	return maps.Clone(h)
}

// size is the number of bytes the headers take on the wire, counting each key
// and value once.
func (h Headers) size() int {
	n := 0
	for k, v := range h {
		n += len(k) + len(v)
	}
	return n
}

// Message is what a channel carries: an ID, headers and a payload.
//
// The ID is also written to the HeaderID header on the wire; within Go code
// the ID field is the single source of truth.
type Message struct {
	// ID identifies the message. Producers assign a time-ordered ID to a
	// message whose ID is empty.
	ID string
	// Headers hold the metadata: destination, partition key, event or
	// command type and any application headers.
	Headers Headers
	// Payload is the body: a document, a command or an event, encoded by
	// the application (see HeaderContentType).
	Payload []byte
}

// New returns a message with the given payload, a fresh ID and no headers.
func New(payload []byte) *Message {
	return &Message{ID: NewID(), Payload: payload}
}

// Header returns the value of header k, or "" when it is absent.
func (m *Message) Header(k string) string { return m.Headers.Get(k) }

// SetHeader sets header k to v, allocating the header map when needed.
func (m *Message) SetHeader(k, v string) {
	if m.Headers == nil {
		m.Headers = make(Headers, 4)
	}
	m.Headers[k] = v
}

// PartitionKey returns the PARTITION_ID header: the key that picks the
// message's shard. Messages without a key have no ordering guarantee.
func (m *Message) PartitionKey() string { return m.Headers.Get(HeaderPartitionID) }

// Destination returns the DESTINATION header: the channel the message was
// sent to. Consumers see it set on every delivered message.
func (m *Message) Destination() string { return m.Headers.Get(HeaderDestination) }

// Clone returns a deep copy of m: headers and payload are copied.
func (m *Message) Clone() *Message {
	c := &Message{ID: m.ID, Headers: m.Headers.Clone()}
	if m.Payload != nil {
		c.Payload = append(make([]byte, 0, len(m.Payload)), m.Payload...)
	}
	return c
}

// Size is the number of bytes m takes on the wire: its ID, each header key
// and value, and its payload.
func (m *Message) Size() int { return len(m.ID) + m.Headers.size() + len(m.Payload) }

// FormatDate formats t as the DATE header value, as Eventuate writes it
// (HttpDateHeaderFormatUtil: DateTimeFormatter.RFC_1123_DATE_TIME in GMT),
// "Fri, 2 Jan 2026 03:04:05 GMT".
func FormatDate(t time.Time) string { return t.UTC().Format(dateLayout) }

// dateLayout is Java's RFC_1123_DATE_TIME of a GMT time: RFC 1123 with
// the zone spelled GMT and the day of the month without a leading zero.
const dateLayout = "Mon, 2 Jan 2006 15:04:05 GMT"
