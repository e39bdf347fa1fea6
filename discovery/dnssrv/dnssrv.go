// Package dnssrv is a read-only discovery.Registry over DNS SRV records, for
// platforms that register instances themselves (server-side registration,
// as Kubernetes does for headless services): the platform health-checks
// instances and keeps the SRV records current; clients look them up.
//
// Register fails with discovery.ErrReadOnly. Watch polls the records every
// interval, so an instance removed by the platform leaves clients within
// that interval (plus the platform's own delay). Every lookup is bounded by
// a timeout (WithTimeout) as well as by its context; Ping checks that the
// DNS server answers.
package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/courier-go/courier/discovery"
)

// DefaultInterval is the default polling interval of watches.
const DefaultInterval = time.Second

// DefaultTimeout bounds each lookup unless WithTimeout says otherwise.
const DefaultTimeout = 5 * time.Second

// Registry resolves services through SRV records. It is safe for
// concurrent use.
type Registry struct {
	resolver *net.Resolver
	server   string // "" for the system's resolvers
	name     func(service string) string
	interval time.Duration
	timeout  time.Duration
}

// Option configures a Registry.
type Option func(*Registry) error

// WithServer sends queries to the DNS server at addr (host:port) instead of
// the system's resolvers.
func WithServer(addr string) Option {
	return func(r *Registry) error {
		if err := discovery.ValidateAddress(addr); err != nil {
			return fmt.Errorf("discovery/dnssrv: DNS server: %w", err)
		}
		r.resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
		r.server = addr
		return nil
	}
}

// WithDomain names a service's records "_<service>._tcp.<domain>" (the
// default domain is "svc.cluster.local").
func WithDomain(domain string) Option {
	return func(r *Registry) error {
		domain = strings.Trim(domain, ".")
		if domain == "" || strings.ContainsAny(domain, " /") {
			return fmt.Errorf("discovery/dnssrv: invalid domain %q", domain)
		}
		r.name = func(service string) string { return "_" + service + "._tcp." + domain + "." }
		return nil
	}
}

// WithKubernetes names a service's records as Kubernetes does for a named
// port of a service: "_<port>._tcp.<service>.<namespace>.svc.<cluster domain>".
func WithKubernetes(namespace, port, clusterDomain string) Option {
	return func(r *Registry) error {
		if namespace == "" || port == "" {
			return errors.New("discovery/dnssrv: Kubernetes naming needs a namespace and a port name")
		}
		if clusterDomain == "" {
			clusterDomain = "cluster.local"
		}
		clusterDomain = strings.Trim(clusterDomain, ".")
		r.name = func(service string) string {
			return "_" + port + "._tcp." + service + "." + namespace + ".svc." + clusterDomain + "."
		}
		return nil
	}
}

// WithInterval sets how often watches poll (default DefaultInterval).
func WithInterval(d time.Duration) Option {
	return func(r *Registry) error {
		if d <= 0 {
			return fmt.Errorf("discovery/dnssrv: interval %v must be positive", d)
		}
		r.interval = d
		return nil
	}
}

// WithTimeout bounds each lookup of a service, its SRV records and their
// targets' addresses together (default DefaultTimeout); a lookup whose
// context ends sooner ends then.
func WithTimeout(d time.Duration) Option {
	return func(r *Registry) error {
		if d <= 0 {
			return fmt.Errorf("discovery/dnssrv: timeout %v must be positive", d)
		}
		r.timeout = d
		return nil
	}
}

// New returns a Registry.
func New(opts ...Option) (*Registry, error) {
	r := &Registry{resolver: net.DefaultResolver, interval: DefaultInterval, timeout: DefaultTimeout}
	WithDomain("svc.cluster.local")(r) //nolint:errcheck // valid constant
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

var _ discovery.Registry = (*Registry)(nil)

// Name returns the SRV name looked up for service.
func (r *Registry) Name(service string) string { return r.name(service) }

// Register implements discovery.Registry: it always fails with
// discovery.ErrReadOnly, since the platform maintains the records.
func (r *Registry) Register(_ context.Context, inst discovery.Instance, _ ...discovery.RegisterOption) (discovery.Lease, error) {
	if err := inst.Validate(); err != nil {
		return nil, fmt.Errorf("discovery/dnssrv: register: %w", err)
	}
	return nil, fmt.Errorf("discovery/dnssrv: register %s: the platform maintains the SRV records: %w", inst, discovery.ErrReadOnly)
}

// Instances implements discovery.Registry. Each SRV record is an instance
// whose ID is "<target>:<port>" and whose address is the target's first
// address (looked up with the same resolver) and the port; the record's
// target, priority and weight are metadata.
func (r *Registry) Instances(ctx context.Context, service string) ([]discovery.Instance, error) {
	insts, err := r.lookup(ctx, service)
	if err != nil {
		return nil, err
	}
	if len(insts) == 0 {
		return nil, &discovery.UnknownServiceError{Service: service}
	}
	return insts, nil
}

// Ping checks that the DNS server answers within the timeout (or before
// ctx ends, if sooner): it looks up the records of a service named
// "courier-ping", which need not exist.
func (r *Registry) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if _, err := r.lookupSRV(ctx, "courier-ping"); err != nil {
		return fmt.Errorf("discovery/dnssrv: ping: %w", err)
	}
	return nil
}

// lookupSRV returns the service's SRV records, none if its name does not
// exist.
func (r *Registry) lookupSRV(ctx context.Context, service string) ([]*net.SRV, error) {
	name := r.name(service)
	_, srvs, err := r.resolver.LookupSRV(ctx, "", "", name)
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return nil, nil
	}
	if err != nil {
		server := r.server
		if server == "" {
			server = "the system's DNS resolvers"
		}
		return nil, fmt.Errorf("SRV %s from %s: %w", name, server, err)
	}
	return srvs, nil
}

func (r *Registry) lookup(ctx context.Context, service string) ([]discovery.Instance, error) {
	if err := discovery.ValidateServiceName(service); err != nil {
		return nil, fmt.Errorf("discovery/dnssrv: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	srvs, err := r.lookupSRV(ctx, service)
	if err != nil {
		return nil, fmt.Errorf("discovery/dnssrv: service %q: %w", service, err)
	}
	insts := make([]discovery.Instance, 0, len(srvs))
	for _, s := range srvs {
		host, port := strings.TrimSuffix(s.Target, "."), strconv.Itoa(int(s.Port))
		// The target is resolved with the same resolver, so that clients
		// need not share it; a target that does not resolve is kept by name.
		addr := net.JoinHostPort(host, port)
		if ips, err := r.resolver.LookupHost(ctx, s.Target); err == nil && len(ips) > 0 {
			addr = net.JoinHostPort(ips[0], port)
		}
		insts = append(insts, discovery.Instance{Service: service, ID: net.JoinHostPort(host, port), Address: addr,
			Metadata: map[string]string{"target": host, "priority": strconv.Itoa(int(s.Priority)), "weight": strconv.Itoa(int(s.Weight))}})
	}
	discovery.SortByID(insts)
	return insts, nil
}

// Watch implements discovery.Registry by polling every interval. A failed
// lookup finishes the watcher (clients keep their last known instances and
// watch again).
func (r *Registry) Watch(_ context.Context, service string) (discovery.Watcher, error) {
	if err := discovery.ValidateServiceName(service); err != nil {
		return nil, fmt.Errorf("discovery/dnssrv: watch: %w", err)
	}
	return &watcher{r: r, service: service, closed: make(chan struct{})}, nil
}

type watcher struct {
	r       *Registry
	service string
	last    []discovery.Instance
	started bool
	closed  chan struct{}
	once    sync.Once
}

func (w *watcher) Next(ctx context.Context) ([]discovery.Instance, error) {
	for {
		if w.started {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-w.closed:
				return nil, fmt.Errorf("discovery/dnssrv: watch %q: %w", w.service, discovery.ErrClosed)
			case <-time.After(w.r.interval):
			}
		}
		insts, err := w.r.lookup(ctx, w.service)
		if err != nil {
			return nil, err
		}
		if !w.started || !slices.EqualFunc(insts, w.last, discovery.Equal) {
			w.started, w.last = true, insts
			return insts, nil
		}
	}
}

func (w *watcher) Close() error {
	w.once.Do(func() { close(w.closed) })
	return nil
}
