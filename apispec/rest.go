package apispec

import (
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
)

// NoBody is the request or response type of an operation without a body.
type NoBody struct{}

// restOperation is one declared REST operation.
type restOperation struct {
	pattern string
	method  string
	path    string   // the OpenAPI path: /orders/{id}
	params  []string // the path parameters, in order
	req     reflect.Type
	resp    reflect.Type
	opts    declOptions
}

type restOptions struct {
	status      int
	problems    []int
	query       []queryParam
	operationID string
	tags        []string
}

type queryParam struct {
	name, description string
	required          bool
}

func restOption(name string, f func(*restOptions)) DeclOption {
	return func(o *declOptions) {
		o.restSet = append(o.restSet, name)
		f(&o.rest)
	}
}

// Status sets the status of an operation's success response (default
// 200 OK).
func Status(code int) DeclOption {
	return restOption("Status", func(o *restOptions) { o.status = code })
}

// Problems declares the error statuses an operation answers with an RFC
// 9457 problem (application/problem+json, as httpx.WriteProblem writes
// it).
func Problems(codes ...int) DeclOption {
	return restOption("Problems", func(o *restOptions) { o.problems = append(o.problems, codes...) })
}

// Query declares an optional string query parameter.
func Query(name, description string) DeclOption {
	return restOption("Query", func(o *restOptions) {
		o.query = append(o.query, queryParam{name: name, description: description})
	})
}

// RequiredQuery declares a required string query parameter.
func RequiredQuery(name, description string) DeclOption {
	return restOption("RequiredQuery", func(o *restOptions) {
		o.query = append(o.query, queryParam{name: name, description: description, required: true})
	})
}

// OperationID sets an operation's operationId (default: the method and
// the path's segments in camel case, getOrdersId for GET /orders/{id}).
func OperationID(id string) DeclOption {
	return restOption("OperationID", func(o *restOptions) { o.operationID = id })
}

// Tags sets an operation's tags.
func Tags(tags ...string) DeclOption {
	return restOption("Tags", func(o *restOptions) { o.tags = append(o.tags, tags...) })
}

// Operation declares a REST operation. pattern is a net/http ServeMux
// pattern with a method, "POST /orders/{id}/cancel", whose wildcards
// become string path parameters; Req is the JSON request body and Resp
// the JSON body of the success response (NoBody for none).
func Operation[Req, Resp any](s *Spec, pattern string, opts ...DeclOption) {
	op := &restOperation{pattern: pattern, req: reflect.TypeFor[Req](), resp: reflect.TypeFor[Resp]()}
	for _, opt := range opts {
		opt(&op.opts)
	}
	err := op.parsePattern()
	switch {
	case err != nil:
	case len(op.opts.replies) > 0:
		err = fmt.Errorf("apispec: operation %s: replies apply to commands only", pattern)
	case op.opts.contentType != "":
		err = fmt.Errorf("apispec: operation %s: ContentType applies to messages only", pattern)
	case op.opts.rest.status != 0 && (op.opts.rest.status < 100 || op.opts.rest.status > 599):
		err = fmt.Errorf("apispec: operation %s: status %d is not an HTTP status", pattern, op.opts.rest.status)
	}
	for _, code := range op.opts.rest.problems {
		if err == nil && (code < 400 || code > 599) {
			err = fmt.Errorf("apispec: operation %s: problem status %d is not an error status (4xx, 5xx)", pattern, code)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.errs = append(s.errs, err)
		return
	}
	for _, other := range s.operations {
		if other.method == op.method && other.path == op.path {
			s.errs = append(s.errs, fmt.Errorf("apispec: operation %s is declared twice", pattern))
			return
		}
	}
	s.operations = append(s.operations, op)
}

var (
	methodToken  = regexp.MustCompile(`^[A-Z]+$`)
	wildcardName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// parsePattern splits a ServeMux pattern into its method, its OpenAPI path
// and its parameters.
func (op *restOperation) parsePattern() error {
	method, p, ok := strings.Cut(op.pattern, " ")
	p = strings.TrimLeft(p, " \t")
	if !ok || !methodToken.MatchString(method) {
		return fmt.Errorf("apispec: operation %q: want a pattern \"METHOD /path\"", op.pattern)
	}
	switch method {
	case http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodOptions, http.MethodHead, http.MethodPatch, http.MethodTrace:
	default:
		return fmt.Errorf("apispec: operation %q: method %s has no OpenAPI operation", op.pattern, method)
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("apispec: operation %q: the path must start with / (patterns with a host are not supported)", op.pattern)
	}
	p = strings.TrimSuffix(p, "{$}")
	segments := strings.Split(p, "/")
	seen := map[string]bool{}
	for i, seg := range segments {
		if !strings.HasPrefix(seg, "{") {
			if strings.ContainsAny(seg, "{}") {
				return fmt.Errorf("apispec: operation %q: a wildcard must be a whole segment", op.pattern)
			}
			continue
		}
		name, ok := strings.CutSuffix(seg[1:], "}")
		if !ok {
			return fmt.Errorf("apispec: operation %q: segment %q is not a wildcard", op.pattern, seg)
		}
		name = strings.TrimSuffix(name, "...")
		if !wildcardName.MatchString(name) || seen[name] {
			return fmt.Errorf("apispec: operation %q: bad or repeated wildcard %q", op.pattern, seg)
		}
		seen[name] = true
		op.params = append(op.params, name)
		segments[i] = "{" + name + "}"
	}
	op.method, op.path = method, strings.Join(segments, "/")
	return nil
}

// operationID returns the operation's id: the one given, or one made of
// the method and the path.
func (op *restOperation) operationID() string {
	if op.opts.rest.operationID != "" {
		return op.opts.rest.operationID
	}
	var b strings.Builder
	b.WriteString(strings.ToLower(op.method))
	for _, seg := range strings.Split(op.path, "/") {
		seg = strings.Trim(seg, "{}")
		for _, word := range strings.FieldsFunc(seg, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') }) {
			b.WriteString(strings.ToUpper(word[:1]) + word[1:])
		}
	}
	return b.String()
}
