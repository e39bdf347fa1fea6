package eventuate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// batchMagic starts a record of Eventuate's CDC that holds a batch of
// messages (EventuateKafkaMultiMessageConverter.MAGIC_ID, in the
// magicBytes of the SBE message header).
const batchMagic = "a8c79db675e14c4cbf1eb77d0d6d0f00"

// ErrMalformedBatch is wrapped by ParseBatch's errors.
var ErrMalformedBatch = errors.New("eventuate: malformed batch")

// BatchMessage is one message of a batch: its Kafka key and its value,
// an envelope.
type BatchMessage struct {
	Key, Value string
}

// IsBatch reports whether a Kafka record value is a batch of messages, as
// Eventuate's EventuateKafkaMultiMessageConverter.isMultiMessage decides:
// it starts with the batch magic.
func IsBatch(value []byte) bool {
	return bytes.HasPrefix(value, []byte(batchMagic))
}

// ParseBatch reads a record value that IsBatch, the binary batch
// Eventuate's CDC publishes with enableBatchProcessing: the SBE message
// MultiMessage of eventuate-messaging-kafka's sbe-schema.xml, little
// endian: a header (the magic, blockLength, templateId, schemaId and
// version, 40 bytes), the group of batch headers and the group of
// messages, each with its own group of headers, its key and its value; a
// group is its blockLength and numInGroup (uint16 each), then its entries,
// each a fixed block of blockLength bytes, its nested groups and its
// variable fields, each a uint32 length and as many bytes. The batch's
// and the messages' own headers are read past: Eventuate's CDC writes
// none, and its consumer uses only the messages' values. Bytes that are
// not UTF-8 read as U+FFFD, as Java's decoding reads them.
func ParseBatch(value []byte) ([]BatchMessage, error) {
	if !IsBatch(value) {
		return nil, fmt.Errorf("%w: no batch magic", ErrMalformedBatch)
	}
	r := sbeReader{b: value, at: len(batchMagic)}
	block := r.uint16()
	template, schema := r.uint16(), r.uint16()
	r.uint16() // version
	if r.err == nil && (template != 1 || schema != 1) {
		return nil, fmt.Errorf("%w: template %d of schema %d, not MultiMessage (1 of 1)", ErrMalformedBatch, template, schema)
	}
	r.skip(int(block))
	r.keyValues() // the batch's headers
	n, entry := r.group()
	var out []BatchMessage
	for range n {
		if r.err != nil {
			break
		}
		r.skip(entry)
		r.keyValues() // the message's headers
		key, value := r.data(), r.data()
		out = append(out, BatchMessage{Key: key, Value: value})
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.at != len(value) {
		return nil, fmt.Errorf("%w: %d bytes after the last message", ErrMalformedBatch, len(value)-r.at)
	}
	return out, nil
}

// sbeReader reads little-endian SBE fields; the first error sticks.
type sbeReader struct {
	b   []byte
	at  int
	err error
}

func (r *sbeReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.at {
		r.err = fmt.Errorf("%w: %d bytes wanted at offset %d of %d", ErrMalformedBatch, n, r.at, len(r.b))
		return nil
	}
	v := r.b[r.at : r.at+n]
	r.at += n
	return v
}

func (r *sbeReader) skip(n int) { r.take(n) }

func (r *sbeReader) uint16() int {
	if v := r.take(2); v != nil {
		return int(binary.LittleEndian.Uint16(v))
	}
	return 0
}

// group reads a group's dimensions: how many entries, and the size of
// each entry's fixed block.
func (r *sbeReader) group() (n, block int) {
	block = r.uint16()
	return r.uint16(), block
}

// data reads a variable field: a uint32 length and the bytes.
func (r *sbeReader) data() string {
	v := r.take(4)
	if v == nil {
		return ""
	}
	n := binary.LittleEndian.Uint32(v)
	if n > 1<<30 { // the schema's maxValue
		r.err = fmt.Errorf("%w: a field of %d bytes", ErrMalformedBatch, n)
		return ""
	}
	return strings.ToValidUTF8(string(r.take(int(n))), "\uFFFD")
}

// keyValues reads past a group of key and value pairs.
func (r *sbeReader) keyValues() {
	n, block := r.group()
	for range n {
		if r.err != nil {
			return
		}
		r.skip(block)
		r.data()
		r.data()
	}
}
