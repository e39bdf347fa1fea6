package discovery

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"regexp"
	"strconv"
)

// Instance is one running copy of a service, as the registry knows it.
type Instance struct {
	// Service is the logical service name clients resolve, e.g. "orders".
	Service string `json:"service"`
	// ID identifies the instance within its service; unique per service.
	ID string `json:"id"`
	// Address is where the instance listens, as host:port.
	Address string `json:"address"`
	// Version is the instance's software version, free-form.
	Version string `json:"version,omitempty"`
	// Metadata carries anything else clients may select on (zone, protocol).
	Metadata map[string]string `json:"metadata,omitempty"`
	// Unhealthy is set while the instance's own health check fails; clients
	// skip unhealthy instances but the registration (and its lease) stays.
	Unhealthy bool `json:"unhealthy,omitempty"`
}

// Healthy reports whether clients should route to the instance.
func (i Instance) Healthy() bool { return !i.Unhealthy }

// Clone returns a copy of i that shares no memory with it.
func (i Instance) Clone() Instance {
	i.Metadata = maps.Clone(i.Metadata)
	return i
}

// String returns "service/id@address".
func (i Instance) String() string { return i.Service + "/" + i.ID + "@" + i.Address }

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)

// ErrInvalidInstance is wrapped by the errors Validate returns.
var ErrInvalidInstance = errors.New("invalid instance")

// Validate checks that the instance can be registered: a service name and ID
// made of letters, digits, '.', '_' and '-', and an address of the form
// host:port with a port in 1..65535.
func (i Instance) Validate() error {
	if err := ValidateServiceName(i.Service); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInstance, err)
	}
	if !namePattern.MatchString(i.ID) {
		return fmt.Errorf("%w: service %q: id %q must be 1-253 letters, digits, '.', '_' or '-'", ErrInvalidInstance, i.Service, i.ID)
	}
	if err := ValidateAddress(i.Address); err != nil {
		return fmt.Errorf("%w: %s/%s: %w", ErrInvalidInstance, i.Service, i.ID, err)
	}
	return nil
}

// ValidateServiceName checks a logical service name.
func ValidateServiceName(service string) error {
	if !namePattern.MatchString(service) {
		return fmt.Errorf("service name %q must be 1-253 letters, digits, '.', '_' or '-'", service)
	}
	return nil
}

// ValidateAddress checks that addr is host:port with a non-empty host
// without spaces or slashes and a numeric port in 1..65535.
func ValidateAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("malformed address %q: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("malformed address %q: empty host", addr)
	}
	for _, r := range host {
		if r <= ' ' || r == '/' || r == '?' || r == '#' || r == '@' {
			return fmt.Errorf("malformed address %q: invalid character %q in host", addr, r)
		}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("malformed address %q: port must be a number in 1..65535", addr)
	}
	return nil
}
