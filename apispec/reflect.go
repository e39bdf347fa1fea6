package apispec

import (
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"strconv"
	"strings"

	"github.com/invopop/jsonschema"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// schemaSet derives the JSON Schemas of payload types and collects the
// named ones as components, each Go or protobuf type under one name.
//
// Go types go through github.com/invopop/jsonschema, configured for
// encoding/json and Courier's tolerant readers: property names from the
// json tags, a property without omitempty (or omitzero) is required (the
// writer always sends it), and additional properties are allowed (a reader
// ignores what it does not know). Further keywords come from jsonschema
// struct tags (`jsonschema:"enum=a,enum=b"`, `jsonschema:"description=..."`).
// Protobuf messages are described from their descriptors, as protojson
// writes them (protoschema.go).
type schemaSet struct {
	prefix  string                 // where the components are: "#/components/schemas/"
	schemas map[string]*jsonSchema // by component name
	names   map[reflect.Type]string
	roots   map[reflect.Type]*jsonSchema // schemaFor's results
	owners  map[string]any               // component name -> reflect.Type or protoreflect.FullName
	err     error                        // the first error of a Namer or Mapper call
}

const componentSchemas = "#/components/schemas/"

func newSchemaSet() *schemaSet {
	return &schemaSet{
		prefix:  componentSchemas,
		schemas: map[string]*jsonSchema{},
		names:   map[reflect.Type]string{},
		roots:   map[reflect.Type]*jsonSchema{},
		owners:  map[string]any{},
	}
}

// ref returns a reference to the component named name.
func (ss *schemaSet) ref(name string) *jsonSchema {
	return &jsonSchema{Ref: ss.prefix + escapePointer(name)}
}

// protoMessage returns the descriptor of t's protobuf message, if t (or a
// pointer to it) is one.
func protoMessage(t reflect.Type) (protoreflect.MessageDescriptor, bool) {
	pm := reflect.TypeFor[proto.Message]()
	switch {
	case t.Implements(pm) && t.Kind() == reflect.Pointer:
		return reflect.New(t.Elem()).Interface().(proto.Message).ProtoReflect().Descriptor(), true
	case reflect.PointerTo(t).Implements(pm):
		return reflect.New(t).Interface().(proto.Message).ProtoReflect().Descriptor(), true
	}
	return nil, false
}

// schemaFor returns the schema of a payload of Go type t: a reference to
// its component, or an inline schema for a type without a name.
func (ss *schemaSet) schemaFor(t reflect.Type) (*jsonSchema, error) {
	if s, ok := ss.roots[t]; ok {
		return s, nil
	}
	s, err := ss.derive(t)
	if err == nil {
		ss.roots[t] = s
	}
	return s, err
}

func (ss *schemaSet) derive(t reflect.Type) (s *jsonSchema, err error) {
	if md, ok := protoMessage(t); ok {
		return ss.protoRef(md), nil
	}
	defer func() {
		if r := recover(); r != nil { // invopop panics on the kinds JSON cannot encode
			s, err = nil, fmt.Errorf("Go type %s has no JSON Schema: %v", t, r)
		}
	}()
	for e := t; ; e = e.Elem() {
		switch e.Kind() {
		case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
			return nil, fmt.Errorf("Go type %s cannot be encoded as JSON", t)
		}
		if e.Kind() != reflect.Pointer && e.Kind() != reflect.Slice && e.Kind() != reflect.Array && e.Kind() != reflect.Map {
			break
		}
	}
	r := &jsonschema.Reflector{
		Anonymous:                 true,
		AllowAdditionalProperties: true,
		Namer:                     ss.name,
		Mapper:                    ss.mapProto,
	}
	root := r.ReflectFromType(t)
	if ss.err != nil {
		return nil, ss.err
	}
	data, err := json.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("schema of Go type %s: %w", t, err)
	}
	tree, err := parseTree(t.String(), data)
	if err != nil {
		return nil, fmt.Errorf("schema of Go type %s: %w", t, err)
	}
	s, err = decodeSchema(node{file: t.String(), v: tree})
	if err != nil {
		return nil, fmt.Errorf("schema of Go type %s: %w", t, err)
	}
	delete(s.Extra, "$schema")
	delete(s.Extra, "$id")
	defs := s.Defs
	s.Defs = nil
	for _, name := range sortedKeys(defs) {
		def := defs[name]
		ss.rewriteRefs(def)
		if _, ok := ss.schemas[name]; !ok {
			ss.schemas[name] = def
		}
	}
	ss.rewriteRefs(s)
	return s, nil
}

// rewriteRefs points the $defs references invopop writes at components.
func (ss *schemaSet) rewriteRefs(s *jsonSchema) {
	s.walk("", func(e *jsonSchema, _ string) {
		if name, ok := strings.CutPrefix(e.Ref, "#/$defs/"); ok {
			e.Ref = ss.prefix + name
		}
	})
}

// name gives each named Go type one component name: its own name, or,
// when another type has it, the name qualified by its package.
func (ss *schemaSet) name(t reflect.Type) string {
	if n, ok := ss.names[t]; ok {
		return n
	}
	if t.Name() == "" {
		return ""
	}
	base := componentName(t.Name())
	candidates := []string{base, componentName(path.Base(t.PkgPath()) + "." + t.Name())}
	for i := 2; ; i++ {
		var n string
		if len(candidates) > 0 {
			n, candidates = candidates[0], candidates[1:]
		} else {
			n = base + "_" + strconv.Itoa(i)
		}
		if _, taken := ss.owners[n]; !taken {
			ss.owners[n] = t
			ss.names[t] = n
			return n
		}
	}
}

// componentName keeps the characters AsyncAPI allows in component keys.
func componentName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// mapProto describes a protobuf message met inside a Go type from its
// descriptor.
func (ss *schemaSet) mapProto(t reflect.Type) *jsonschema.Schema {
	md, ok := protoMessage(t)
	if !ok {
		return nil
	}
	return &jsonschema.Schema{Ref: ss.protoRef(md).Ref}
}
