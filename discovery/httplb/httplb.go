// Package httplb is client-side discovery for HTTP: a RoundTripper that
// treats the request's host as a logical service name, resolves it through a
// discovery.Resolver and sends the request to one of the service's available
// instances.
//
//	client := &http.Client{Transport: httplb.New(resolver)}
//	client.Get("http://orders/orders/42") // goes to an instance of "orders"
package httplb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/balancer"
)

// Transport is an http.RoundTripper over discovery. It is safe for
// concurrent use.
type Transport struct {
	base    http.RoundTripper
	bal     balancer.Balancer
	health  []discovery.Health
	ejector *balancer.Ejector
	picker  *balancer.Picker
}

// Option configures a Transport.
type Option func(*Transport) error

// WithBase sets the transport that carries requests to instances (default
// http.DefaultTransport).
func WithBase(rt http.RoundTripper) Option {
	return func(t *Transport) error {
		if rt == nil {
			return errors.New("httplb: nil base transport")
		}
		t.base = rt
		return nil
	}
}

// WithBalancer sets the balancer (default round robin).
func WithBalancer(b balancer.Balancer) Option {
	return func(t *Transport) error {
		if b == nil {
			return errors.New("httplb: nil balancer")
		}
		t.bal = b
		return nil
	}
}

// WithHealth adds a check an instance must pass to be picked, typically
// "its circuit breaker is not open".
func WithHealth(h discovery.Health) Option {
	return func(t *Transport) error {
		if h == nil {
			return errors.New("httplb: nil health")
		}
		t.health = append(t.health, h)
		return nil
	}
}

// WithEjector ejects instances whose requests fail at the transport level
// (connection refused, reset): see balancer.Ejector. Off by default: the
// registry's lease TTL bounds how long a dead instance is tried, and
// circuit breakers given with WithHealth usually do the rest.
func WithEjector(e *balancer.Ejector) Option {
	return func(t *Transport) error {
		if e == nil {
			return errors.New("httplb: nil ejector")
		}
		t.ejector = e
		t.health = append(t.health, e)
		return nil
	}
}

// New returns a Transport resolving through r.
func New(r *discovery.Resolver, opts ...Option) (*Transport, error) {
	if r == nil {
		return nil, errors.New("httplb: nil resolver")
	}
	t := &Transport{base: http.DefaultTransport, bal: balancer.RoundRobin()}
	for _, o := range opts {
		if err := o(t); err != nil {
			return nil, err
		}
	}
	var err error
	if t.picker, err = balancer.NewPicker(r, t.bal, t.health...); err != nil {
		return nil, fmt.Errorf("httplb: %w", err)
	}
	return t, nil
}

type instanceKey struct{}

// InstanceFrom returns the instance a request was sent to, for requests
// passed to the base transport (e.g. by a logging RoundTripper).
func InstanceFrom(req *http.Request) (discovery.Instance, bool) {
	inst, ok := req.Context().Value(instanceKey{}).(discovery.Instance)
	return inst, ok
}

// RoundTrip resolves req.URL's host as a service name and sends req to one
// of its instances. The request's Host header becomes the instance's
// address. It fails, without sending, when the service is unknown or has no
// available instance.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.send(req, false)
}

// Forward is RoundTrip for a request that the caller hands over and does
// not use again, such as the outbound request a reverse proxy builds for
// each call: instead of sending a copy of req, it points req's own URL at
// the instance and sends req, which saves copying its header.
func (t *Transport) Forward(req *http.Request) (*http.Response, error) {
	return t.send(req, true)
}

func (t *Transport) send(req *http.Request, owned bool) (*http.Response, error) {
	host := req.URL.Host
	service := req.URL.Hostname()
	inst, done, err := t.picker.Pick(req.Context(), service)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("httplb: %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	ctx := context.WithValue(req.Context(), instanceKey{}, inst)
	var out *http.Request
	if owned {
		out = req.WithContext(ctx)
	} else {
		out = req.Clone(ctx)
	}
	out.URL.Host = inst.Address
	out.Host = ""
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		done()
		if t.ejector != nil && req.Context().Err() == nil {
			t.ejector.Failure(inst)
		}
		u := *out.URL // req's own when owned: name the service, not the instance
		u.Host = host
		return nil, fmt.Errorf("httplb: %s %s via %s: %w", req.Method, u.Redacted(), inst, err)
	}
	if t.ejector != nil {
		t.ejector.Success(inst)
	}
	resp.Body = &body{ReadCloser: resp.Body, done: done}
	return resp, nil
}

// body calls done when the response has been read or closed, so that the
// least-outstanding balancer counts streaming responses as in flight.
type body struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *body) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}
