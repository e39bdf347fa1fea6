package apispec

import (
	"encoding/json"
	"sort"
	"strconv"
)

// jsonSchema is a JSON Schema as Courier's documents hold it: the keywords the
// compatibility rules read are fields; every other keyword is kept, as it
// came, in Extra, so that a schema read and written again loses nothing.
// The generated schemas use the keywords that JSON Schema draft 07 (the
// base of AsyncAPI's schema format) and 2020-12 (OpenAPI 3.1's) share.
type jsonSchema struct {
	// Bool is set for the boolean schemas true (anything) and false
	// (nothing); the other fields are then empty.
	Bool *bool

	Ref         string
	Type        []string // one or more of the JSON types; "integer" too
	Format      string
	Title       string
	Description string

	Properties           map[string]*jsonSchema
	Required             []string
	AdditionalProperties *jsonSchema
	Items                *jsonSchema

	Enum     []any // values as decoded from JSON (json.Number for numbers)
	Const    any
	HasConst bool // Const is set (it may be null)

	AllOf []*jsonSchema
	AnyOf []*jsonSchema
	OneOf []*jsonSchema

	Defs        map[string]*jsonSchema // $defs
	Definitions map[string]*jsonSchema // definitions (draft 07)

	// FieldNumber is the protobuf field number of a property of a schema
	// derived from a protobuf message (the x-protobuf-number keyword), 0
	// for others.
	FieldNumber int

	Extra map[string]any
}

// keywordFieldNumber carries a protobuf field number in a property's schema.
const keywordFieldNumber = "x-protobuf-number"

// MarshalJSON writes the schema with its keywords in sorted order.
func (s *jsonSchema) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("null"), nil
	}
	if s.Bool != nil {
		return json.Marshal(*s.Bool)
	}
	m := make(map[string]any, len(s.Extra)+8)
	for k, v := range s.Extra {
		m[k] = v
	}
	set := func(k string, v any, ok bool) {
		if ok {
			m[k] = v
		}
	}
	set("$ref", s.Ref, s.Ref != "")
	switch len(s.Type) {
	case 0:
	case 1:
		m["type"] = s.Type[0]
	default:
		m["type"] = s.Type
	}
	set("format", s.Format, s.Format != "")
	set("title", s.Title, s.Title != "")
	set("description", s.Description, s.Description != "")
	set("properties", s.Properties, s.Properties != nil)
	set("required", s.Required, len(s.Required) > 0)
	set("additionalProperties", s.AdditionalProperties, s.AdditionalProperties != nil)
	set("items", s.Items, s.Items != nil)
	set("enum", s.Enum, s.Enum != nil)
	set("const", s.Const, s.HasConst)
	set("allOf", s.AllOf, len(s.AllOf) > 0)
	set("anyOf", s.AnyOf, len(s.AnyOf) > 0)
	set("oneOf", s.OneOf, len(s.OneOf) > 0)
	set("$defs", s.Defs, len(s.Defs) > 0)
	set("definitions", s.Definitions, len(s.Definitions) > 0)
	set(keywordFieldNumber, s.FieldNumber, s.FieldNumber != 0)
	return json.Marshal(m)
}

// decodeSchema decodes the schema at n.
func decodeSchema(n node) (*jsonSchema, error) {
	if b, ok := n.v.(bool); ok {
		return &jsonSchema{Bool: &b}, nil
	}
	keys, err := n.keys()
	if err != nil {
		return nil, err
	}
	s := &jsonSchema{}
	for _, k := range keys {
		c, _ := n.child(k)
		switch k {
		case "$ref":
			s.Ref, err = n.str(k)
		case "type":
			s.Type, err = decodeTypes(c)
		case "format":
			s.Format, err = n.str(k)
		case "title":
			s.Title, err = n.str(k)
		case "description":
			s.Description, err = n.str(k)
		case "properties":
			s.Properties, err = decodeSchemaMap(c)
		case "required":
			s.Required, err = n.strings(k)
		case "additionalProperties":
			s.AdditionalProperties, err = decodeSchema(c)
		case "items":
			if _, isList := c.v.([]any); isList { // draft 07 tuples: kept as they are
				s.setExtra(k, c.v)
				continue
			}
			s.Items, err = decodeSchema(c)
		case "enum":
			if _, err = c.list(); err == nil {
				s.Enum = c.v.([]any)
			}
		case "const":
			s.Const, s.HasConst = c.v, true
		case "allOf":
			s.AllOf, err = decodeSchemaList(c)
		case "anyOf":
			s.AnyOf, err = decodeSchemaList(c)
		case "oneOf":
			s.OneOf, err = decodeSchemaList(c)
		case "$defs":
			s.Defs, err = decodeSchemaMap(c)
		case "definitions":
			s.Definitions, err = decodeSchemaMap(c)
		case keywordFieldNumber:
			num, ok := c.v.(json.Number)
			var i int64
			if ok {
				i, err = strconv.ParseInt(string(num), 10, 32)
			}
			if !ok || err != nil || i <= 0 {
				return nil, c.errorf("want a positive integer field number, have %v", c.v)
			}
			s.FieldNumber = int(i)
		default:
			s.setExtra(k, c.v)
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *jsonSchema) setExtra(k string, v any) {
	if s.Extra == nil {
		s.Extra = map[string]any{}
	}
	s.Extra[k] = v
}

func decodeTypes(n node) ([]string, error) {
	switch v := n.v.(type) {
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for i, e := range v {
			t, ok := e.(string)
			if !ok {
				return nil, n.index(i).errorf("want a type name, have %s", kindOf(e))
			}
			out = append(out, t)
		}
		return out, nil
	}
	return nil, n.errorf("want a type name or an array of them, have %s", kindOf(n.v))
}

func decodeSchemaMap(n node) (map[string]*jsonSchema, error) {
	keys, err := n.keys()
	if err != nil {
		return nil, err
	}
	out := make(map[string]*jsonSchema, len(keys))
	for _, k := range keys {
		c, _ := n.child(k)
		if out[k], err = decodeSchema(c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeSchemaList(n node) ([]*jsonSchema, error) {
	items, err := n.list()
	if err != nil {
		return nil, err
	}
	out := make([]*jsonSchema, len(items))
	for i, it := range items {
		if out[i], err = decodeSchema(it); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// walk calls f on s and on every schema under it (depth first) with its
// JSON pointer, s's being ptr, through the keywords that hold schemas;
// references are not followed.
func (s *jsonSchema) walk(ptr string, f func(s *jsonSchema, ptr string)) {
	if s == nil {
		return
	}
	f(s, ptr)
	for _, k := range sortedKeys(s.Properties) {
		s.Properties[k].walk(ptr+"/properties/"+escapePointer(k), f)
	}
	s.AdditionalProperties.walk(ptr+"/additionalProperties", f)
	s.Items.walk(ptr+"/items", f)
	for i, list := range [][]*jsonSchema{s.AllOf, s.AnyOf, s.OneOf} {
		for j, e := range list {
			e.walk(ptr+"/"+[]string{"allOf", "anyOf", "oneOf"}[i]+"/"+strconv.Itoa(j), f)
		}
	}
	for i, defs := range []map[string]*jsonSchema{s.Defs, s.Definitions} {
		for _, k := range sortedKeys(defs) {
			defs[k].walk(ptr+"/"+[]string{"$defs", "definitions"}[i]+"/"+escapePointer(k), f)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
