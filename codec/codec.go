// Package codec encodes message payloads. A Codec turns a Go value into
// bytes and back and names its encoding with a content type, which travels
// in the content-type header so that the reader picks the matching codec.
//
// Both codecs are tolerant readers: a payload written by a newer version of
// a type decodes into an older one (unknown fields are ignored) and a
// payload written by an older version decodes into a newer one (missing
// fields keep their zero values).
package codec

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"reflect"

	"google.golang.org/protobuf/proto"
)

// Content types of the built-in codecs.
const (
	ContentTypeJSON     = "application/json"
	ContentTypeProtobuf = "application/x-protobuf"
)

// Codec encodes and decodes payloads of one content type.
type Codec interface {
	ContentType() string
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// JSON is the encoding/json codec: unknown fields are ignored and missing
// ones keep their zero values.
var JSON Codec = jsonCodec{}

// Protobuf is the codec for values that implement proto.Message.
var Protobuf Codec = protoCodec{}

type jsonCodec struct{}

func (jsonCodec) ContentType() string { return ContentTypeJSON }

func (jsonCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

type protoCodec struct{}

func (protoCodec) ContentType() string { return ContentTypeProtobuf }

// ErrNotProto means a value given to the protobuf codec is not a
// proto.Message.
var ErrNotProto = errors.New("codec: value is not a proto.Message")

func (protoCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%w: %T", ErrNotProto, v)
	}
	return proto.Marshal(m)
}

func (protoCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("%w: %T", ErrNotProto, v)
	}
	return proto.Unmarshal(data, m)
}

// ErrUnknownContentType means no codec of a Set handles a content type.
var ErrUnknownContentType = errors.New("codec: unknown content type")

// Set picks codecs: by value when encoding (protobuf for proto.Message
// values, JSON otherwise, unless an override says differently) and by
// content type when decoding. The zero Set is ready to use and holds the
// two built-in codecs. A Set is safe for concurrent use once configured.
type Set struct {
	byType []Codec                // extra codecs, searched first
	byGo   map[reflect.Type]Codec // per-type choices
}

// With returns a copy of s that also knows c, preferred over the built-in
// codecs for its content type when decoding.
func (s Set) With(c Codec) Set {
	return Set{byType: append(append([]Codec(nil), s.byType...), c), byGo: s.byGo}
}

// Use returns a copy of s that encodes values of sample's type with c.
func (s Set) Use(sample any, c Codec) Set {
	byGo := make(map[reflect.Type]Codec, len(s.byGo)+1)
	for k, v := range s.byGo {
		byGo[k] = v
	}
	byGo[reflect.TypeOf(sample)] = c
	return Set{byType: append(append([]Codec(nil), s.byType...), c), byGo: byGo}
}

// For returns the codec that encodes v.
func (s Set) For(v any) Codec {
	if c, ok := s.byGo[reflect.TypeOf(v)]; ok {
		return c
	}
	if _, ok := v.(proto.Message); ok {
		return Protobuf
	}
	return JSON
}

// ByContentType returns the codec for a content-type header value. An
// empty content type means JSON, the default of Eventuate and most peers.
func (s Set) ByContentType(ct string) (Codec, error) {
	if ct == "" {
		return JSON, nil
	}
	base, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrUnknownContentType, ct, err)
	}
	for i := len(s.byType) - 1; i >= 0; i-- {
		if s.byType[i].ContentType() == base {
			return s.byType[i], nil
		}
	}
	switch base {
	case ContentTypeJSON:
		return JSON, nil
	case ContentTypeProtobuf, "application/protobuf":
		return Protobuf, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownContentType, ct)
}

// Encode marshals v with the codec For picks and returns the payload and
// its content type.
func (s Set) Encode(v any) ([]byte, string, error) {
	c := s.For(v)
	data, err := c.Marshal(v)
	if err != nil {
		return nil, "", fmt.Errorf("codec: encoding %T as %s: %w", v, c.ContentType(), err)
	}
	return data, c.ContentType(), nil
}

// Decode unmarshals data, of content type ct, into v.
func (s Set) Decode(ct string, data []byte, v any) error {
	c, err := s.ByContentType(ct)
	if err != nil {
		return err
	}
	if err := c.Unmarshal(data, v); err != nil {
		return fmt.Errorf("codec: decoding %s into %T: %w", c.ContentType(), v, err)
	}
	return nil
}
