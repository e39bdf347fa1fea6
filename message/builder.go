package message

// Builder assembles a Message step by step:
//
//	m := message.NewBuilder(payload).
//		WithPartitionKey(orderID).
//		WithHeader(message.HeaderEventType, "OrderCreated").
//		Build()
//
// A Builder is not safe for concurrent use; Build may be called more than
// once and returns independent messages.
type Builder struct {
	id      string
	headers Headers
	payload []byte
}

// NewBuilder starts a message with the given payload.
func NewBuilder(payload []byte) *Builder {
	return &Builder{payload: payload, headers: make(Headers, 4)}
}

// WithID sets the message ID. Without it Build assigns a new one.
func (b *Builder) WithID(id string) *Builder {
	b.id = id
	return b
}

// WithHeader sets one header.
func (b *Builder) WithHeader(k, v string) *Builder {
	b.headers[k] = v
	return b
}

// WithHeaders sets every header of h.
func (b *Builder) WithHeaders(h Headers) *Builder {
	for k, v := range h {
		b.headers[k] = v
	}
	return b
}

// WithPartitionKey sets the PARTITION_ID header: messages with the same key
// are consumed in order.
func (b *Builder) WithPartitionKey(key string) *Builder {
	return b.WithHeader(HeaderPartitionID, key)
}

// WithContentType sets the content-type header.
func (b *Builder) WithContentType(ct string) *Builder {
	return b.WithHeader(HeaderContentType, ct)
}

// Build returns the message, with a new time-ordered ID unless WithID set
// one. The message owns copies of the headers; the payload is shared with
// the slice given to NewBuilder.
func (b *Builder) Build() *Message {
	id := b.id
	if id == "" {
		id = NewID()
	}
	return &Message{ID: id, Headers: b.headers.Clone(), Payload: b.payload}
}
