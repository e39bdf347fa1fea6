package balancer

import (
	"context"
	"errors"
	"fmt"

	"github.com/courier-go/courier/discovery"
)

// Picker resolves a service and picks one of its available instances.
type Picker struct {
	resolver *discovery.Resolver
	balancer Balancer
	health   []discovery.Health
}

// NewPicker returns a Picker over r using b; an instance is available when
// it is registered healthy and every health says so.
func NewPicker(r *discovery.Resolver, b Balancer, health ...discovery.Health) (*Picker, error) {
	if r == nil || b == nil {
		return nil, errors.New("balancer: picker needs a resolver and a balancer")
	}
	for _, h := range health {
		if h == nil {
			return nil, errors.New("balancer: nil health")
		}
	}
	return &Picker{resolver: r, balancer: b, health: health}, nil
}

// Pick returns an available instance of service and the function to call
// when the call ends. An unknown service gives an error wrapping
// discovery.ErrUnknownService; a service whose instances are all unhealthy,
// ejected or behind an open breaker one wrapping
// discovery.ErrNoAvailableInstance; both name the service.
func (p *Picker) Pick(ctx context.Context, service string) (discovery.Instance, func(), error) {
	insts, err := p.resolver.Instances(ctx, service)
	if err != nil {
		return discovery.Instance{}, nil, err
	}
	avail := Available(insts, p.health...)
	if len(avail) == 0 {
		return discovery.Instance{}, nil, fmt.Errorf("discovery: service %q: none of its %d instances is available (unhealthy, ejected or circuit open): %w",
			service, len(insts), discovery.ErrNoAvailableInstance)
	}
	inst, done := p.balancer.Pick(avail)
	return inst, done, nil
}

// Available returns the instances that are registered healthy and available
// according to every health. It does not modify insts, and may return it
// when all are available.
func Available(insts []discovery.Instance, health ...discovery.Health) []discovery.Instance {
	if allAvailable(insts, health) {
		return insts // the common case, without allocating
	}
	out := make([]discovery.Instance, 0, len(insts))
next:
	for _, inst := range insts {
		if !inst.Healthy() {
			continue
		}
		for _, h := range health {
			if !h.Available(inst) {
				continue next
			}
		}
		out = append(out, inst)
	}
	return out
}

func allAvailable(insts []discovery.Instance, health []discovery.Health) bool {
	for _, inst := range insts {
		if !inst.Healthy() {
			return false
		}
		for _, h := range health {
			if !h.Available(inst) {
				return false
			}
		}
	}
	return true
}
