package apispec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// ErrInvalid is wrapped by a Validator's errors: a request or response
// that its OpenAPI document does not allow.
var ErrInvalid = errors.New("apispec: not allowed by the OpenAPI document")

// maxValidatedBody bounds the bodies a Validator reads.
const maxValidatedBody = 16 << 20

// Validator checks HTTP requests and responses against an OpenAPI
// document with kin-openapi's openapi3filter, for tests: the route, the
// parameters, the bodies of every content type it knows (JSON and
// problem+json among them) and the response statuses the operation
// declares. It is safe for concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
}

// NewValidator returns a Validator for an OpenAPI document.
func NewValidator(doc *Document) (*Validator, error) {
	if doc == nil || doc.format != FormatOpenAPI {
		return nil, errors.New("apispec: NewValidator needs an OpenAPI document")
	}
	t, err := loadOpenAPI(doc.name, doc.text)
	if err != nil {
		return nil, err
	}
	t.Servers = nil // match paths on whichever host serves them
	router, err := legacy.NewRouter(t)
	if err != nil {
		return nil, fmt.Errorf("apispec: %s: %w", doc.name, err)
	}
	return &Validator{doc: t, router: router}, nil
}

func (v *Validator) options() *openapi3filter.Options {
	return &openapi3filter.Options{
		IncludeResponseStatus: true,
		MultiError:            true,
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	}
}

// route finds r's operation.
func (v *Validator) route(r *http.Request) (*openapi3filter.RequestValidationInput, error) {
	route, params, err := v.router.FindRoute(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", ErrInvalid, r.Method, r.URL.Path, err)
	}
	return &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: v.options()}, nil
}

// ValidateRequest checks a request; its body is read and put back.
func (v *Validator) ValidateRequest(ctx context.Context, r *http.Request) error {
	body, err := readBody(&r.Body)
	if err != nil {
		return fmt.Errorf("apispec: reading the request body: %w", err)
	}
	in, err := v.route(r)
	if err != nil {
		return err
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		return fmt.Errorf("%w: request %s %s: %v", ErrInvalid, r.Method, r.URL.Path, err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

// ValidateResponse checks the response to request r.
func (v *Validator) ValidateResponse(ctx context.Context, r *http.Request, status int, header http.Header, body []byte) error {
	in, err := v.route(r)
	if err != nil {
		return err
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: v.options()}
	out.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return fmt.Errorf("%w: response %d to %s %s: %v", ErrInvalid, status, r.Method, r.URL.Path, err)
	}
	return nil
}

// RoundTripper returns an http.RoundTripper that validates each request
// before next sends it and each response it returns, failing the round
// trip with the error: a client for tests that checks both sides of every
// call against the document.
func (v *Validator) RoundTripper(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		original := r.Body
		body, err := readBody(&original)
		if err != nil {
			return nil, fmt.Errorf("apispec: reading the request body: %w", err)
		}
		checked, sent := r.Clone(r.Context()), r.Clone(r.Context())
		checked.Body, sent.Body = io.NopCloser(bytes.NewReader(body)), io.NopCloser(bytes.NewReader(body))
		if body == nil {
			checked.Body, sent.Body = nil, nil
		}
		if err := v.ValidateRequest(r.Context(), checked); err != nil {
			return nil, err
		}
		resp, err := next.RoundTrip(sent)
		if err != nil {
			return nil, err
		}
		respBody, err := readBody(&resp.Body)
		if err != nil {
			return nil, fmt.Errorf("apispec: reading the response body: %w", err)
		}
		if err := v.ValidateResponse(r.Context(), checked, resp.StatusCode, resp.Header, respBody); err != nil {
			return nil, err
		}
		return resp, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// readBody reads *body (up to a limit), closes it and replaces it with a
// reader of what was read.
func readBody(body *io.ReadCloser) ([]byte, error) {
	if *body == nil || *body == http.NoBody {
		return nil, nil
	}
	data, err := io.ReadAll(io.LimitReader(*body, maxValidatedBody+1))
	closeErr := (*body).Close()
	if err == nil && len(data) > maxValidatedBody {
		err = fmt.Errorf("body over %d bytes", maxValidatedBody)
	}
	if err == nil {
		err = closeErr
	}
	*body = io.NopCloser(bytes.NewReader(data))
	return data, err
}
