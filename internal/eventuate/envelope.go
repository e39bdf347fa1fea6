// Package eventuate reads and writes the formats of Eventuate Tram, the
// Java framework whose header names Courier follows: the JSON envelope
// {"payload": ..., "headers": {...}} that Eventuate's CDC service publishes
// to Kafka and RabbitMQ and that its consumers parse, the binary batches of
// envelopes its CDC can publish to Kafka, and the message IDs of its
// outbox table. The broker adapters and the outbox use it for their
// Eventuate profiles; users choose a profile through those packages.
//
// What is written follows Eventuate's own code (the testdata README names
// the files and commits): the envelope is MessageWithDestination.toJson,
// a Jackson serialization of ImmutableMap.of("payload", ..., "headers",
// ...) with Eventuate's JSonMapper settings; it is read as Eventuate's
// consumers read it, JSonMapper.fromJson(value, MessageImpl.class).
package eventuate

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"unicode/utf8"

	"github.com/courier-go/courier/message"
)

// ErrMalformedEnvelope is wrapped by ParseEnvelope's errors: the bytes are
// not an Eventuate envelope.
var ErrMalformedEnvelope = errors.New("eventuate: malformed envelope")

// ErrNotText is returned for a payload, header name or value that is not
// valid UTF-8: Eventuate's envelope and outbox table carry text (Java
// strings), and bytes that are not text would not arrive as sent.
var ErrNotText = errors.New("eventuate: not UTF-8 text, which Eventuate's formats carry")

// AppendEnvelope appends to dst the envelope of a message, byte for byte
// as Eventuate's MessageWithDestination.toJson writes it: the object
// {"payload":...,"headers":{...}} without white space, strings escaped as
// Jackson escapes them (\" \\ \b \t \n \f \r, other control characters as
// \u00XX in upper case, nothing else). Java writes the headers in the
// iteration order of its HashMap, which Eventuate's readers do not depend
// on; AppendEnvelope writes them sorted by name, so that its output is
// deterministic.
func AppendEnvelope(dst []byte, payload []byte, headers map[string]string) ([]byte, error) {
	if !utf8.Valid(payload) {
		return dst, fmt.Errorf("payload: %w", ErrNotText)
	}
	dst = append(dst, `{"payload":`...)
	dst = appendString(dst, string(payload))
	dst = append(dst, `,"headers":`...)
	var err error
	if dst, err = AppendHeaders(dst, headers); err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

// AppendHeaders appends headers as a JSON object, as Jackson writes a
// HashMap<String, String> with Eventuate's JSonMapper: the headers column
// of the outbox table, and the headers of the envelope.
func AppendHeaders(dst []byte, headers map[string]string) ([]byte, error) {
	names := make([]string, 0, len(headers))
	for k, v := range headers {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return dst, fmt.Errorf("header %q: %w", k, ErrNotText)
		}
		names = append(names, k)
	}
	names = javaOrder(names)
	dst = append(dst, '{')
	for i, k := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, headers[k])
	}
	return append(dst, '}'), nil
}

// appendString appends s, valid UTF-8, as a JSON string escaped as
// Jackson's generators escape (com.fasterxml.jackson.core.io.CharTypes:
// sOutputEscapes128 and the upper-case HC digits).
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// ParseEnvelope reads an envelope as Eventuate's consumers do
// (JSonMapper.fromJson(value, MessageImpl.class)): a JSON object whose
// "payload" is a string and whose "headers" is an object of strings;
// other members are ignored, as JSonMapper ignores unknown properties,
// and of a member given twice the last counts. Bytes that are not UTF-8
// read as U+FFFD, as Java's decoding of the record reads them. Anything
// else, a payload or headers that are missing or null included, is an
// error wrapping ErrMalformedEnvelope: Eventuate's consumers fail on
// such a message too.
func ParseEnvelope(b []byte) (payload string, headers map[string]string, err error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrMalformedEnvelope, err)
	}
	if members == nil {
		return "", nil, fmt.Errorf("%w: null instead of an object", ErrMalformedEnvelope)
	}
	var p *string
	if raw, ok := members["payload"]; !ok {
		return "", nil, fmt.Errorf("%w: no payload", ErrMalformedEnvelope)
	} else if err := json.Unmarshal(raw, &p); err != nil || p == nil {
		return "", nil, fmt.Errorf("%w: the payload is %s, not a string", ErrMalformedEnvelope, kind(raw))
	}
	var hs map[string]*string
	if raw, ok := members["headers"]; !ok {
		return "", nil, fmt.Errorf("%w: no headers", ErrMalformedEnvelope)
	} else if err := json.Unmarshal(raw, &hs); err != nil || hs == nil {
		return "", nil, fmt.Errorf("%w: the headers are %s, not an object of strings", ErrMalformedEnvelope, kind(raw))
	}
	headers = make(map[string]string, len(hs))
	for k, v := range hs {
		if v == nil {
			return "", nil, fmt.Errorf("%w: header %q is null", ErrMalformedEnvelope, k)
		}
		headers[k] = *v
	}
	return *p, headers, nil
}

// kind names the JSON type of raw, for errors.
func kind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "empty"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object with a value that is not a string"
	case '[':
		return "an array"
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}

// FormatID formats an ID as Eventuate's Int128.asString does,
// "%016x-%016x": the form of the IDs of its outbox, which in database-id
// mode are made of the row's dbid (hi) and the outbox's id (lo).
func FormatID(hi, lo uint64) string {
	return fmt.Sprintf("%016x-%016x", hi, lo)
}

// Message returns the envelope of m, sent to channel, as Eventuate's CDC
// publishes it (MessageWithDestination.toJson of the row that
// EventuateCommonJdbcOperations writes): m's headers with ID, DESTINATION
// and, unless m has one, date as DATE. It also returns the key Eventuate
// publishes it with (MessageWithDestinationPublishingStrategy.partitionKeyFor):
// the PARTITION_ID header, or the message ID without one.
func Message(channel, date string, m *message.Message) (envelope []byte, key string, err error) {
	headers := make(map[string]string, len(m.Headers)+3)
	maps.Copy(headers, m.Headers)
	headers[message.HeaderID] = m.ID
	headers[message.HeaderDestination] = channel
	if _, ok := headers[message.HeaderDate]; !ok {
		headers[message.HeaderDate] = date
	}
	if envelope, err = AppendEnvelope(nil, m.Payload, headers); err != nil {
		return nil, "", fmt.Errorf("message %s in Eventuate's format: %w", m.ID, err)
	}
	key = m.PartitionKey()
	if key == "" {
		key = m.ID
	}
	return envelope, key, nil
}
