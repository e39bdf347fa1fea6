package apispec

import (
	"errors"
	"fmt"
	"sync"
)

// Spec describes one service's API: the messages it sends and receives
// (declared with Publishes, Consumes, Handles, Sends and Receives) and its
// REST operations (Operation). AsyncAPI and OpenAPI return its documents
// and Handler serves them. Declarations are collected without failing; a
// mistake in one (two Go types for one message type, a pattern that does
// not parse) is returned by the methods that build the documents. A Spec
// is safe for concurrent use.
type Spec struct {
	mu          sync.Mutex
	service     string
	version     string
	description string
	errs        []error
	messages    []*messageDecl
	operations  []*restOperation
}

// Option configures a Spec.
type Option func(*Spec)

// WithDescription sets the description of the service's documents.
func WithDescription(text string) Option { return func(s *Spec) { s.description = text } }

// New returns an empty Spec of service at version, a semantic version
// (MAJOR.MINOR.PATCH) that becomes each document's info.version.
func New(service, version string, opts ...Option) *Spec {
	s := &Spec{service: service, version: version}
	for _, opt := range opts {
		opt(s)
	}
	if service == "" {
		s.errs = append(s.errs, errors.New("apispec: empty service name"))
	}
	if _, err := parseVersion(version); err != nil {
		s.errs = append(s.errs, fmt.Errorf("apispec: service %s: %w", service, err))
	}
	return s
}

// Service returns the service's name.
func (s *Spec) Service() string { return s.service }

// Version returns the API version.
func (s *Spec) Version() string { return s.version }

func (s *Spec) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

// err returns the declaration errors so far, joined.
func (s *Spec) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}
