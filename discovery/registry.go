package discovery

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Registry is the port service instances register with and clients read
// from. Implementations are safe for concurrent use.
type Registry interface {
	// Register stores inst under a lease of the configured TTL and keeps
	// the lease alive with heartbeats until Deregister is called on the
	// returned Lease, or the heartbeats fail for longer than the TTL. An
	// instance with a malformed address or name is refused with an error
	// wrapping ErrInvalidInstance. Registering an ID that is already
	// registered replaces it.
	Register(ctx context.Context, inst Instance, opts ...RegisterOption) (Lease, error)
	// Instances returns the service's registered instances, healthy or
	// not, sorted by ID. A service without any instance gives an error
	// wrapping ErrUnknownService that names it.
	Instances(ctx context.Context, service string) ([]Instance, error)
	// Watch follows the service's instance set. The service need not
	// exist yet: its set is then empty.
	Watch(ctx context.Context, service string) (Watcher, error)
}

// ServiceLister is implemented by registries that can list the services
// registered in them: the in-process and etcd registries, and the
// registries registryurl opens (whose Services fails with an error
// wrapping errors.ErrUnsupported for DNS, which has no such list). Tools
// that show a whole system, such as courier console, use it.
type ServiceLister interface {
	// Services returns the names of the services that have at least one
	// instance registered, healthy or not, sorted.
	Services(ctx context.Context) ([]string, error)
}

// MetadataMetrics is the instance metadata that says where the instance
// serves its Prometheus metrics: a URL (http://host:port/metrics), or a
// path such as /metrics on the instance's own address over HTTP. Tools
// that show a system's state, such as courier console, scrape it.
const MetadataMetrics = "metrics"

// Lease is one registration, kept alive by heartbeats.
type Lease interface {
	// Instance returns the instance as last registered or updated.
	Instance() Instance
	// Update replaces the registered instance's version, metadata and
	// health; its service, ID and address cannot change.
	Update(ctx context.Context, inst Instance) error
	// Deregister removes the registration at once and stops heartbeats.
	// It is idempotent.
	Deregister(ctx context.Context) error
	// Done is closed when the lease has ended: deregistered, or lost
	// because it expired in the registry (Err then wraps ErrLeaseLost).
	Done() <-chan struct{}
	// Err says why the lease ended once Done is closed: nil after
	// Deregister, an error wrapping ErrLeaseLost otherwise.
	Err() error
}

// Watcher follows one service's instance set.
type Watcher interface {
	// Next returns the service's instances, sorted by ID. The first call
	// returns the current set at once; later calls block until the set
	// differs from the one last returned, ctx ends or the watch fails. A
	// watcher whose Next returned an error other than ctx's is finished.
	Next(ctx context.Context) ([]Instance, error)
	// Close ends the watch and releases its resources.
	Close() error
}

// Errors the registries and clients return, for errors.Is.
var (
	// ErrUnknownService: no instance of the service is registered.
	ErrUnknownService = errors.New("unknown service")
	// ErrNoAvailableInstance: the service has instances but none may be
	// called now (all unhealthy, ejected or with an open breaker).
	ErrNoAvailableInstance = errors.New("no available instance")
	// ErrLeaseLost: the registration expired in the registry because its
	// heartbeats did not reach it in time.
	ErrLeaseLost = errors.New("registration lease lost")
	// ErrReadOnly: the registry is maintained by the platform (DNS) and
	// does not take registrations.
	ErrReadOnly = errors.New("registry is read-only")
	// ErrClosed: the registry, resolver or watcher has been closed.
	ErrClosed = errors.New("closed")
)

// UnknownServiceError is returned when a service has no instance at all.
// It wraps ErrUnknownService.
type UnknownServiceError struct {
	Service string
}

func (e *UnknownServiceError) Error() string {
	return fmt.Sprintf("discovery: unknown service %q: no instance registered", e.Service)
}

// Unwrap returns ErrUnknownService.
func (e *UnknownServiceError) Unwrap() error { return ErrUnknownService }

// DefaultTTL is the lease TTL of a registration when none is given: a
// crashed instance disappears from clients within about this long.
const DefaultTTL = 3 * time.Second

// RegisterConfig is the result of applying RegisterOptions; adapters read it
// with RegisterSettings.
type RegisterConfig struct {
	// TTL is how long the registration outlives its last heartbeat.
	TTL time.Duration
	// Heartbeat is the interval between heartbeats; TTL/3 unless set.
	Heartbeat time.Duration
}

// RegisterOption configures one registration.
type RegisterOption func(*RegisterConfig)

// WithTTL sets the lease TTL (at least one second; registries may round it
// up to whole seconds).
func WithTTL(ttl time.Duration) RegisterOption { return func(c *RegisterConfig) { c.TTL = ttl } }

// WithHeartbeat sets the heartbeat interval, which must be below the TTL.
func WithHeartbeat(d time.Duration) RegisterOption {
	return func(c *RegisterConfig) { c.Heartbeat = d }
}

// RegisterSettings applies opts over the defaults and validates the result.
func RegisterSettings(opts ...RegisterOption) (RegisterConfig, error) {
	c := RegisterConfig{TTL: DefaultTTL}
	for _, o := range opts {
		o(&c)
	}
	if c.TTL < time.Second {
		return c, fmt.Errorf("discovery: lease TTL %v is below the minimum of 1s", c.TTL)
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = c.TTL / 3
	}
	if c.Heartbeat <= 0 || c.Heartbeat >= c.TTL {
		return c, fmt.Errorf("discovery: heartbeat %v must be positive and below the TTL %v", c.Heartbeat, c.TTL)
	}
	return c, nil
}

// Health tells whether an instance may be called now, beyond its own
// registered health: typically whether its circuit breaker is closed.
// Implementations must be safe for concurrent use and fast.
type Health interface {
	Available(inst Instance) bool
}

// HealthFunc adapts a function to Health.
type HealthFunc func(inst Instance) bool

// Available calls f.
func (f HealthFunc) Available(inst Instance) bool { return f(inst) }
