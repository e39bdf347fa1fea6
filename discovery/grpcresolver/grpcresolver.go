// Package grpcresolver makes gRPC clients follow the registry: with the
// Builder installed, grpc.NewClient("courier:///orders") resolves the
// service "orders" through a discovery.Resolver and hands its healthy
// instances to gRPC's standard balancers (pick_first, round_robin, ...),
// updating them as instances come and go.
//
//	b, _ := grpcresolver.NewBuilder(resolver)
//	conn, _ := grpc.NewClient("courier:///orders", grpc.WithResolvers(b),
//		grpc.WithDefaultServiceConfig(grpcresolver.RoundRobin),
//		grpc.WithTransportCredentials(insecure.NewCredentials()))
package grpcresolver

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/resolver"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/balancer"
)

// Scheme is the target scheme the Builder serves: "courier:///<service>".
const Scheme = "courier"

// RoundRobin is a service config selecting gRPC's round_robin balancer, for
// grpc.WithDefaultServiceConfig.
const RoundRobin = `{"loadBalancingConfig":[{"round_robin":{}}]}`

// Builder is a gRPC resolver.Builder for the "courier" scheme.
type Builder struct {
	r      *discovery.Resolver
	health []discovery.Health
}

// NewBuilder returns a Builder resolving through r. Instances must also pass
// every health (e.g. a circuit breaker) to be handed to gRPC; they are
// re-evaluated whenever the instance set changes.
func NewBuilder(r *discovery.Resolver, health ...discovery.Health) (*Builder, error) {
	if r == nil {
		return nil, errors.New("grpcresolver: nil resolver")
	}
	for _, h := range health {
		if h == nil {
			return nil, errors.New("grpcresolver: nil health")
		}
	}
	return &Builder{r: r, health: health}, nil
}

// Scheme implements resolver.Builder.
func (b *Builder) Scheme() string { return Scheme }

// Build implements resolver.Builder.
func (b *Builder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	service := strings.TrimPrefix(target.Endpoint(), "/")
	if err := discovery.ValidateServiceName(service); err != nil {
		return nil, fmt.Errorf("grpcresolver: target %q: %w", target.URL.String(), err)
	}
	stop, err := b.r.Subscribe(service, func(insts []discovery.Instance, err error) {
		if err != nil {
			cc.ReportError(err)
			return
		}
		if len(insts) == 0 {
			cc.ReportError(&discovery.UnknownServiceError{Service: service})
			return
		}
		avail := balancer.Available(insts, b.health...)
		if len(avail) == 0 {
			cc.ReportError(fmt.Errorf("discovery: service %q: none of its %d instances is available: %w",
				service, len(insts), discovery.ErrNoAvailableInstance))
			return
		}
		eps := make([]resolver.Endpoint, len(avail))
		for i, inst := range avail {
			eps[i] = resolver.Endpoint{Addresses: []resolver.Address{{Addr: inst.Address}}}
		}
		cc.UpdateState(resolver.State{Endpoints: eps}) //nolint:errcheck // the balancer reports its own errors
	})
	if err != nil {
		return nil, fmt.Errorf("grpcresolver: %w", err)
	}
	return &res{stop: stop}, nil
}

type res struct{ stop func() }

// ResolveNow is a no-op: the registry is watched, not polled.
func (*res) ResolveNow(resolver.ResolveNowOptions) {}

func (r *res) Close() { r.stop() }
