package direct

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/courier-go/courier/message"
)

// The wire protocol: one gRPC bidirectional stream per pair of brokers
// (the sender's and the receiver's), whose messages are frames in the
// binary form below rather than protocol buffers, so that a message's
// headers and payload are copied once. Every number is an unsigned
// varint; every string and byte string is its length, then its bytes.
//
//	request  = kind seq instance channel shard [id headers payload]
//	           (kind 1, deliver, carries the message; kind 2, flush, does not)
//	headers  = count (name value)*
//	response = seq status text
//
// The receiver answers every request with a response of the same seq:
// statusOK once a deliver's message is queued at the instance (or, for a
// flush, once the instance's queue for the shard is empty), statusGone
// when the instance is closing or unknown (it takes nothing more; the
// sender picks another), statusRefused when the frame cannot be decoded.
const (
	kindDeliver = 1
	kindFlush   = 2

	statusOK      = 0
	statusGone    = 1
	statusRefused = 2
	// statusUnreachable is never sent: a sender's own answer to the
	// requests of a stream that broke.
	statusUnreachable = 255
)

// errMalformed is wrapped by decoding errors.
var errMalformed = errors.New("direct: malformed frame")

// request is a decoded deliver or flush frame.
type request struct {
	kind     byte
	seq      uint64
	instance string // the receiving subscription's instance id
	channel  string
	shard    int
	msg      *message.Message // deliver only
}

// response is a decoded answer to a request.
type response struct {
	seq    uint64
	status byte
	text   string
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendDeliver appends a deliver frame of msg, whose headers are already
// the ones to deliver (DESTINATION and DATE set).
func appendDeliver(b []byte, seq uint64, instance, channel string, shard int, msg *message.Message) []byte {
	b = append(b, kindDeliver)
	b = binary.AppendUvarint(b, seq)
	b = appendString(b, instance)
	b = appendString(b, channel)
	b = binary.AppendUvarint(b, uint64(shard))
	b = appendString(b, msg.ID)
	b = binary.AppendUvarint(b, uint64(len(msg.Headers)))
	for k, v := range msg.Headers {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(msg.Payload)))
	return append(b, msg.Payload...)
}

func appendFlush(b []byte, seq uint64, instance, channel string, shard int) []byte {
	b = append(b, kindFlush)
	b = binary.AppendUvarint(b, seq)
	b = appendString(b, instance)
	b = appendString(b, channel)
	return binary.AppendUvarint(b, uint64(shard))
}

func appendResponse(b []byte, r response) []byte {
	b = binary.AppendUvarint(b, r.seq)
	b = append(b, r.status)
	return appendString(b, r.text)
}

// reader decodes a frame, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at byte %d", errMalformed, what, len(r.b))
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad " + what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("missing " + what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes(what string) []byte {
	n := r.uvarint(what + " length")
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(fmt.Sprintf("%s of %d bytes in %d left", what, n, len(r.b)))
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) string(what string) string { return string(r.bytes(what)) }

// decodeRequest decodes a request frame. The message's payload is a copy:
// b may be reused.
func decodeRequest(b []byte) (request, error) {
	r := reader{b: b}
	q := request{kind: r.byte("kind")}
	if r.err == nil && q.kind != kindDeliver && q.kind != kindFlush {
		return q, fmt.Errorf("%w: unknown kind %d", errMalformed, q.kind)
	}
	q.seq = r.uvarint("seq")
	q.instance = r.string("instance")
	q.channel = r.string("channel")
	shard := r.uvarint("shard")
	if r.err == nil && shard > maxShards {
		r.fail(fmt.Sprintf("shard %d over %d", shard, maxShards))
	}
	q.shard = int(shard)
	if q.kind == kindDeliver {
		m := &message.Message{ID: r.string("id")}
		count := r.uvarint("header count")
		if r.err == nil && count > uint64(len(r.b))/2 {
			r.fail(fmt.Sprintf("%d headers in %d bytes", count, len(r.b)))
		}
		if r.err == nil {
			m.Headers = make(message.Headers, count)
		}
		for i := uint64(0); i < count && r.err == nil; i++ {
			k := r.string("header name")
			m.Headers[k] = r.string("header value")
		}
		m.Payload = append([]byte(nil), r.bytes("payload")...)
		q.msg = m
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail(fmt.Sprintf("%d bytes after the frame", len(r.b)))
	}
	return q, r.err
}

func decodeResponse(b []byte) (response, error) {
	r := reader{b: b}
	p := response{seq: r.uvarint("seq"), status: r.byte("status"), text: r.string("text")}
	if r.err == nil && p.status > statusRefused {
		r.fail(fmt.Sprintf("unknown status %d", p.status))
	}
	if r.err == nil && len(r.b) > 0 {
		r.fail(fmt.Sprintf("%d bytes after the frame", len(r.b)))
	}
	return p, r.err
}

// frameCodec is the gRPC codec of the stream: its messages are *frame,
// the bytes of one encoded frame, carried as they are.
type frameCodec struct{}

// frame is one encoded frame.
type frame struct{ b []byte }

func (frameCodec) Marshal(v any) ([]byte, error) {
	f, ok := v.(*frame)
	if !ok {
		return nil, fmt.Errorf("direct: codec cannot marshal %T", v)
	}
	return f.b, nil
}

func (frameCodec) Unmarshal(data []byte, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return fmt.Errorf("direct: codec cannot unmarshal into %T", v)
	}
	f.b = data
	return nil
}

func (frameCodec) Name() string { return "courier-direct" }
