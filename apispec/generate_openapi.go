package apispec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strconv"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/courier-go/courier/rpc/httpx"
)

// OpenAPIVersion is the OpenAPI version of the documents Courier writes.
// It reads 3.0.x and 3.1.x.
const OpenAPIVersion = "3.1.0"

// contentTypeProblem is the media type of RFC 9457 problems.
const contentTypeProblem = "application/problem+json"

// OpenAPI returns the OpenAPI 3.1 document of the service's REST
// operations, built with kin-openapi: a path item for each path, an
// operation for each method with its path and query parameters, its JSON
// request body, its success response and its problem+json error
// responses, the schemas (derived from the Go types as for messages)
// under components. It fails with every declaration error.
func (s *Spec) OpenAPI() (*Document, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	ops := append([]*restOperation(nil), s.operations...)
	s.mu.Unlock()

	t := &openapi3.T{
		OpenAPI: OpenAPIVersion,
		Info:    &openapi3.Info{Title: s.service, Version: s.version, Description: s.description},
		Paths:   openapi3.NewPaths(),
		// "/" is what a document without servers means (the host that
		// serves it), said explicitly for the tools that want servers.
		Servers: openapi3.Servers{{URL: "/"}},
	}
	ss := newSchemaSet()
	var errs []error
	for _, op := range ops {
		o, err := op.openapi(ss)
		if err != nil {
			errs = append(errs, fmt.Errorf("apispec: service %s: operation %s: %w", s.service, op.pattern, err))
			continue
		}
		item := t.Paths.Value(op.path)
		if item == nil {
			item = &openapi3.PathItem{}
			t.Paths.Set(op.path, item)
		}
		item.SetOperation(op.method, o)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(ss.schemas) > 0 {
		t.Components = &openapi3.Components{Schemas: openapi3.Schemas{}}
		for _, name := range sortedKeys(ss.schemas) {
			ref, err := kinSchema(ss.schemas[name])
			if err != nil {
				return nil, fmt.Errorf("apispec: service %s: schema %s: %w", s.service, name, err)
			}
			t.Components.Schemas[name] = ref
		}
	}
	data, err := json.Marshal(t)
	if err == nil {
		data, err = reorder(data, "openapi", "info", "servers", "paths", "components")
	}
	if err != nil {
		return nil, fmt.Errorf("apispec: service %s: OpenAPI document: %w", s.service, err)
	}
	name := s.service + ".openapi.json"
	if err := resolveOpenAPI(name, t); err != nil {
		return nil, fmt.Errorf("apispec: service %s: the generated OpenAPI document is not valid: %w", s.service, err)
	}
	return newDocument(&Document{name: name, format: FormatOpenAPI, version: s.version, text: data, openapi: t}), nil
}

// reorder writes a JSON object's first keys in the order given, the others
// after them in sorted order, indented.
func reorder(data []byte, first ...string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	write := func(k string) {
		v, ok := m[k]
		if !ok {
			return
		}
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		key, _ := json.Marshal(k)
		buf.Write(key)
		buf.WriteByte(':')
		buf.Write(v)
		delete(m, k)
	}
	for _, k := range first {
		write(k)
	}
	for _, k := range sortedKeys(m) {
		write(k)
	}
	buf.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// kinSchema converts a schema to kin-openapi's model, through its JSON.
func kinSchema(s *jsonSchema) (*openapi3.SchemaRef, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var ref openapi3.SchemaRef
	if err := json.Unmarshal(data, &ref); err != nil {
		return nil, err
	}
	return &ref, nil
}

// bodySchema returns the schema of a JSON body of Go type t, or nil for
// NoBody.
func bodySchema(ss *schemaSet, t reflect.Type) (*openapi3.SchemaRef, error) {
	if t == reflect.TypeFor[NoBody]() {
		return nil, nil
	}
	if _, ok := protoMessage(t); ok {
		return nil, fmt.Errorf("Go type %s is a protobuf message: REST bodies are JSON types (gRPC services keep their .proto files)", t)
	}
	s, err := ss.schemaFor(t)
	if err != nil {
		return nil, err
	}
	return kinSchema(s)
}

func (op *restOperation) openapi(ss *schemaSet) (*openapi3.Operation, error) {
	o := &openapi3.Operation{
		OperationID: op.operationID(),
		Summary:     op.opts.summary,
		Description: op.opts.description,
		Tags:        op.opts.rest.tags,
		Responses:   openapi3.NewResponses(),
	}
	for _, name := range op.params {
		o.Parameters = append(o.Parameters, &openapi3.ParameterRef{Value: openapi3.NewPathParameter(name).WithSchema(openapi3.NewStringSchema())})
	}
	for _, q := range op.opts.rest.query {
		p := openapi3.NewQueryParameter(q.name).WithSchema(openapi3.NewStringSchema()).WithDescription(q.description).WithRequired(q.required)
		o.Parameters = append(o.Parameters, &openapi3.ParameterRef{Value: p})
	}
	req, err := bodySchema(ss, op.req)
	if err != nil {
		return nil, fmt.Errorf("request body: %w", err)
	}
	if req != nil {
		o.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(req)}
	}
	resp, err := bodySchema(ss, op.resp)
	if err != nil {
		return nil, fmt.Errorf("response body: %w", err)
	}
	status := op.opts.rest.status
	if status == 0 {
		status = http.StatusOK
	}
	r := openapi3.NewResponse().WithDescription(statusText(status))
	if resp != nil {
		r = r.WithJSONSchemaRef(resp)
	}
	o.Responses.Set(strconv.Itoa(status), &openapi3.ResponseRef{Value: r})
	if len(op.opts.rest.problems) > 0 {
		problem, err := ss.schemaFor(reflect.TypeFor[httpx.Problem]())
		if err != nil {
			return nil, err
		}
		ref, err := kinSchema(problem)
		if err != nil {
			return nil, err
		}
		codes := append([]int(nil), op.opts.rest.problems...)
		sort.Ints(codes)
		for _, code := range codes {
			pr := openapi3.NewResponse().WithDescription(statusText(code)).
				WithContent(openapi3.NewContentWithSchemaRef(ref, []string{contentTypeProblem}))
			o.Responses.Set(strconv.Itoa(code), &openapi3.ResponseRef{Value: pr})
		}
	}
	return o, nil
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "Status " + strconv.Itoa(code)
}
