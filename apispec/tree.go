package apispec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A document is read in two steps: its text (JSON or YAML) becomes a tree
// of plain values (map[string]any, []any, string, json.Number, bool, nil),
// and the tree is decoded into the document's types by walking it with
// its JSON pointer, so that every error names the file and the place in it.

// DocumentError is an error in a document: the file, the place in it as a
// JSON pointer (empty for the document as a whole) and what is wrong.
type DocumentError struct {
	File    string
	Pointer string
	Err     error
}

func (e *DocumentError) Error() string {
	if e.Pointer == "" {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.File, e.Pointer, e.Err)
}

func (e *DocumentError) Unwrap() error { return e.Err }

// ErrMalformed is wrapped by the errors of documents that do not parse or
// do not have the shape their format requires.
var ErrMalformed = errors.New("malformed document")

// ErrUnsupportedVersion is wrapped by the errors of documents whose format
// version Courier does not read (an AsyncAPI 2 or an OpenAPI 2 document).
var ErrUnsupportedVersion = errors.New("unsupported format version")

// ErrUnresolvedRef is wrapped by the errors of a $ref that points nowhere
// in its document, or outside it.
var ErrUnresolvedRef = errors.New("$ref does not resolve")

// maxDepth bounds the nesting of a document, so that a hostile one cannot
// exhaust the stack, and maxNodes the values a YAML document's aliases may
// expand to.
const (
	maxDepth = 256
	maxNodes = 1 << 20
)

// parseTree parses JSON or YAML text into a tree.
func parseTree(file string, data []byte) (any, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return nil, &DocumentError{File: file, Err: fmt.Errorf("%w: empty", ErrMalformed)}
	}
	if trimmed[0] == '{' || trimmed[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, &DocumentError{File: file, Err: fmt.Errorf("%w: %s", ErrMalformed, jsonErrorPlace(trimmed, err))}
		}
		if dec.More() {
			return nil, &DocumentError{File: file, Err: fmt.Errorf("%w: text after the JSON value", ErrMalformed)}
		}
		if err := checkDepth(v, 0); err != nil {
			return nil, &DocumentError{File: file, Err: err}
		}
		return v, nil
	}
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, &DocumentError{File: file, Err: fmt.Errorf("%w: %w", ErrMalformed, err)}
	}
	c := yamlConverter{budget: maxNodes}
	v, err := c.convert(&n, 0)
	if err != nil {
		return nil, &DocumentError{File: file, Err: err}
	}
	return v, nil
}

// jsonErrorPlace adds the line and column to a JSON syntax error.
func jsonErrorPlace(data []byte, err error) string {
	var syn *json.SyntaxError
	if !errors.As(err, &syn) {
		return err.Error()
	}
	line, col := 1, 1
	for _, b := range data[:min(int(syn.Offset), len(data))] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

func checkDepth(v any, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("%w: nested deeper than %d levels", ErrMalformed, maxDepth)
	}
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			if err := checkDepth(e, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := checkDepth(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlConverter converts a YAML node into a tree, refusing what JSON
// cannot hold (keys that are not strings) and aliases that expand beyond
// its budget of values.
type yamlConverter struct{ budget int }

func (c *yamlConverter) convert(n *yaml.Node, depth int) (any, error) {
	c.budget--
	if c.budget < 0 {
		return nil, fmt.Errorf("%w: more than %d values (YAML aliases expand too far)", ErrMalformed, maxNodes)
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: line %d: nested deeper than %d levels", ErrMalformed, n.Line, maxDepth)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, fmt.Errorf("%w: empty", ErrMalformed)
		}
		return c.convert(n.Content[0], depth+1)
	case yaml.AliasNode:
		return c.convert(n.Alias, depth+1)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%w: line %d: a key that is not a string", ErrMalformed, k.Line)
			}
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("%w: line %d: YAML merge keys are not supported", ErrMalformed, k.Line)
			}
			e, err := c.convert(v, depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = e
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, item := range n.Content {
			e, err := c.convert(item, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, e)
		}
		return s, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrMalformed, n.Line, err)
			}
			return b, nil
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("%w: line %d: %q is not a JSON number", ErrMalformed, n.Line, n.Value)
			}
			if n.ShortTag() == "!!int" {
				if i, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
					return json.Number(strconv.FormatInt(i, 10)), nil
				}
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
		default:
			return n.Value, nil
		}
	}
	return nil, fmt.Errorf("%w: line %d: unexpected YAML node", ErrMalformed, n.Line)
}

// node is a value of a tree with its JSON pointer, for errors.
type node struct {
	file string
	ptr  string
	v    any
}

func (n node) errorf(format string, args ...any) error {
	return &DocumentError{File: n.file, Pointer: n.ptr, Err: fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)}
}

// child returns the value under key (absent: v is nil and ok false).
func (n node) child(key string) (node, bool) {
	m, _ := n.v.(map[string]any)
	v, ok := m[key]
	return node{file: n.file, ptr: n.ptr + "/" + escapePointer(key), v: v}, ok
}

func (n node) index(i int) node {
	s, _ := n.v.([]any)
	return node{file: n.file, ptr: n.ptr + "/" + strconv.Itoa(i), v: s[i]}
}

// object checks that n is an object.
func (n node) object() (map[string]any, error) {
	m, ok := n.v.(map[string]any)
	if !ok {
		return nil, n.errorf("want an object, have %s", kindOf(n.v))
	}
	return m, nil
}

// keys returns the keys of an object, sorted.
func (n node) keys() ([]string, error) {
	m, err := n.object()
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// list checks that n is an array and returns its elements.
func (n node) list() ([]node, error) {
	s, ok := n.v.([]any)
	if !ok {
		return nil, n.errorf("want an array, have %s", kindOf(n.v))
	}
	out := make([]node, len(s))
	for i := range s {
		out[i] = n.index(i)
	}
	return out, nil
}

// str returns the string under key, or "" when it is absent.
func (n node) str(key string) (string, error) {
	c, ok := n.child(key)
	if !ok || c.v == nil {
		return "", nil
	}
	s, ok := c.v.(string)
	if !ok {
		return "", c.errorf("want a string, have %s", kindOf(c.v))
	}
	return s, nil
}

// strings returns the array of strings under key.
func (n node) strings(key string) ([]string, error) {
	c, ok := n.child(key)
	if !ok || c.v == nil {
		return nil, nil
	}
	items, err := c.list()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(items))
	for i, it := range items {
		s, ok := it.v.(string)
		if !ok {
			return nil, it.errorf("want a string, have %s", kindOf(it.v))
		}
		out[i] = s
	}
	return out, nil
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// escapePointer escapes a JSON pointer token (RFC 6901).
func escapePointer(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func unescapePointer(s string) string {
	if !strings.Contains(s, "~") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

// lookup finds the node a local $ref ("#/a/b") points to in root; from is
// the node holding the $ref, for the error.
func lookup(root node, from node, ref string) (node, error) {
	if !strings.HasPrefix(ref, "#") {
		return node{}, &DocumentError{File: from.file, Pointer: from.ptr, Err: fmt.Errorf("%w: %q: only references within the document (#/...) are supported", ErrUnresolvedRef, ref)}
	}
	ptr := strings.TrimPrefix(ref, "#")
	cur := root
	if ptr == "" {
		return cur, nil
	}
	if !strings.HasPrefix(ptr, "/") {
		return node{}, &DocumentError{File: from.file, Pointer: from.ptr, Err: fmt.Errorf("%w: %q is not a JSON pointer", ErrUnresolvedRef, ref)}
	}
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = unescapePointer(tok)
		switch v := cur.v.(type) {
		case map[string]any:
			c, ok := cur.child(tok)
			if !ok {
				return node{}, &DocumentError{File: from.file, Pointer: from.ptr, Err: fmt.Errorf("%w: %q: no %q in %s", ErrUnresolvedRef, ref, tok, orRoot(cur.ptr))}
			}
			cur = c
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return node{}, &DocumentError{File: from.file, Pointer: from.ptr, Err: fmt.Errorf("%w: %q: no element %q in %s", ErrUnresolvedRef, ref, tok, orRoot(cur.ptr))}
			}
			cur = cur.index(i)
		default:
			return node{}, &DocumentError{File: from.file, Pointer: from.ptr, Err: fmt.Errorf("%w: %q: %s is %s", ErrUnresolvedRef, ref, orRoot(cur.ptr), kindOf(cur.v))}
		}
	}
	return cur, nil
}

func orRoot(ptr string) string {
	if ptr == "" {
		return "the document"
	}
	return ptr
}
