package apispec

import (
	"google.golang.org/protobuf/reflect/protoreflect"
)

// protoRef returns a reference to the component schema of a protobuf
// message, named by its full name, adding it (and the messages it uses)
// first. The schema describes the message as protojson writes it: the
// JSON field names, 64-bit integers as strings, enums by value name, the
// well-known types in their JSON forms; each property carries its field
// number (x-protobuf-number), which the compatibility rules compare.
func (ss *schemaSet) protoRef(md protoreflect.MessageDescriptor) *jsonSchema {
	name := componentName(string(md.FullName()))
	if owner, ok := ss.owners[name]; ok && owner == md.FullName() {
		return ss.ref(name)
	}
	if _, taken := ss.owners[name]; taken {
		name = componentName("proto." + string(md.FullName()))
	}
	ss.owners[name] = md.FullName()
	s := &jsonSchema{Type: []string{"object"}, Properties: map[string]*jsonSchema{}}
	ss.schemas[name] = s // before the fields, for recursive messages
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		p := ss.protoField(fd)
		p.FieldNumber = int(fd.Number())
		s.Properties[fd.JSONName()] = p
		if fd.Cardinality() == protoreflect.Required {
			s.Required = append(s.Required, fd.JSONName())
		}
	}
	s.Extra = map[string]any{"x-protobuf-message": string(md.FullName())}
	return ss.ref(name)
}

// protoField describes one field: repeated fields as arrays, maps as
// objects.
func (ss *schemaSet) protoField(fd protoreflect.FieldDescriptor) *jsonSchema {
	switch {
	case fd.IsMap():
		return &jsonSchema{Type: []string{"object"}, AdditionalProperties: ss.protoValue(fd.MapValue())}
	case fd.IsList():
		return &jsonSchema{Type: []string{"array"}, Items: ss.protoValue(fd)}
	}
	return ss.protoValue(fd)
}

// protoValue describes one value of a field.
func (ss *schemaSet) protoValue(fd protoreflect.FieldDescriptor) *jsonSchema {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return typed("boolean", "")
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return typed("integer", "int32")
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return typed("integer", "uint32")
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return typed("string", "int64")
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return typed("string", "uint64")
	case protoreflect.FloatKind:
		return typed("number", "float")
	case protoreflect.DoubleKind:
		return typed("number", "double")
	case protoreflect.StringKind:
		return typed("string", "")
	case protoreflect.BytesKind:
		s := typed("string", "")
		s.Extra = map[string]any{"contentEncoding": "base64"}
		return s
	case protoreflect.EnumKind:
		ed := fd.Enum()
		if ed.FullName() == "google.protobuf.NullValue" {
			return typed("null", "")
		}
		s := typed("string", "")
		values := ed.Values()
		for i := 0; i < values.Len(); i++ {
			s.Enum = append(s.Enum, string(values.Get(i).Name()))
		}
		s.Extra = map[string]any{"x-protobuf-enum": string(ed.FullName())}
		return s
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if wk := ss.wellKnown(fd.Message()); wk != nil {
			return wk
		}
		return ss.protoRef(fd.Message())
	}
	return &jsonSchema{}
}

// wellKnown returns the JSON form of a well-known type, or nil.
func (ss *schemaSet) wellKnown(md protoreflect.MessageDescriptor) *jsonSchema {
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return typed("string", "date-time")
	case "google.protobuf.Duration":
		s := typed("string", "")
		s.Extra = map[string]any{"pattern": `^-?[0-9]+(\.[0-9]{1,9})?s$`}
		return s
	case "google.protobuf.FieldMask":
		return typed("string", "")
	case "google.protobuf.Struct", "google.protobuf.Empty":
		return typed("object", "")
	case "google.protobuf.ListValue":
		return typed("array", "")
	case "google.protobuf.Value":
		return &jsonSchema{}
	case "google.protobuf.Any":
		return &jsonSchema{Type: []string{"object"}, Required: []string{"@type"},
			Properties: map[string]*jsonSchema{"@type": typed("string", "")}}
	case "google.protobuf.BoolValue", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.FloatValue",
		"google.protobuf.DoubleValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
		// A wrapper is written as its value.
		return ss.protoValue(md.Fields().ByName("value"))
	}
	return nil
}

// typed returns a schema of one type and a format.
func typed(t, format string) *jsonSchema { return &jsonSchema{Type: []string{t}, Format: format} }
