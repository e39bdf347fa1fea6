// Package registryurl opens a service registry from a URL, for commands
// and configuration that name the registry:
//
//	etcd://[user:pass@]host:port[,host:port...][?prefix=/courier/services/&TLS]
//	    an etcd cluster (package discovery/etcd); with a user and
//	    password, etcd's password authentication; TLS stands for the TLS
//	    parameters:
//	      tls=true                  TLS (https), verifying etcd with the system's roots
//	      cacertfile=F              verify etcd with the CA certificates in F (PEM)
//	      certfile=F&keyfile=K      present the client certificate in F, its key in K (PEM);
//	                                etcd takes its common name as the user when the URL has none
//	      server_name_indication=H  verify etcd's certificate for H, not the host
//	    any of the files turns TLS on
//	dns://[server:port][?domain=svc.cluster.local&interval=1s]
//	    DNS SRV records maintained by the platform (package
//	    discovery/dnssrv), from the DNS server given or else the system's
//	    resolvers
//	memory://
//	    an in-process registry (package discovery/memory): the services of
//	    one process only
//
// Unknown or repeated parameters are refused, naming the parameter and the
// known ones, so that a typo does not go unnoticed. Reserved characters in
// user names and passwords must be percent-encoded; error messages never
// show the password.
//
// As sql.Open, Open does not wait for the registry: call Ping to check
// that it answers. Every request to the registry, Ping included, is bounded
// by a timeout (WithTimeout) as well as by its context.
package registryurl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/dnssrv"
	"github.com/courier-go/courier/discovery/etcd"
	"github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/internal/connurl"
)

// Schemes lists the URL schemes Open understands.
const Schemes = "etcd://, dns://, memory://"

// DefaultTimeout bounds each request to the registry unless WithTimeout
// says otherwise.
const DefaultTimeout = 5 * time.Second

// ErrUnsupported means the URL's scheme names no known registry.
var ErrUnsupported = errors.New("registryurl: unsupported registry URL")

// Registry is a registry opened from a URL. It is safe for concurrent use.
type Registry interface {
	discovery.Registry
	// Ping checks that the registry answers within the timeout (or before
	// ctx ends, if sooner). The error names the registry's URL, without
	// its password.
	Ping(ctx context.Context) error
	// Close stops the heartbeats of the leases registered through the
	// registry and its watches, and releases its connections.
	Close() error
	// String returns the registry's URL without its password, for logs.
	String() string
	// Services lists the registered services (discovery.ServiceLister);
	// for dns://, which has no such list, it fails with an error wrapping
	// errors.ErrUnsupported.
	Services(ctx context.Context) ([]string, error)
}

// Option configures Open.
type Option func(*config) error

type config struct {
	timeout time.Duration
	log     *slog.Logger
}

// WithTimeout bounds each request to the registry (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("registryurl: timeout %v must be positive", d)
		}
		c.timeout = d
		return nil
	}
}

// WithLogger sets the logger of the registry's background work, such as
// failed heartbeats (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("registryurl: nil logger")
		}
		c.log = l
		return nil
	}
}

// Open opens the registry raw names. It returns once the URL is checked and
// the client set up, without waiting for the registry to answer, except
// for etcd's password authentication, which it waits for up to the
// timeout or ctx's end.
func Open(ctx context.Context, raw string, opts ...Option) (Registry, error) {
	cfg := config{timeout: DefaultTimeout, log: slog.Default()}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("registryurl: invalid URL: %w", connurl.Redact(err, raw))
	}
	var r *registry
	switch u.Scheme {
	case "etcd":
		r, err = openEtcd(ctx, u, cfg)
	case "dns":
		r, err = openDNS(u, cfg)
	case "memory":
		r, err = openMemory(u)
	default:
		return nil, fmt.Errorf("%w: %q (known: %s)", ErrUnsupported, connurl.Redacted(raw), Schemes)
	}
	if err != nil {
		return nil, connurl.Redact(fmt.Errorf("registryurl: %s: %w", connurl.Redacted(raw), err), raw)
	}
	r.url = connurl.Redacted(raw)
	return r, nil
}

// registry is an opened registry and what Ping and Close do for it.
type registry struct {
	discovery.Registry
	url   string // without the password
	ping  func(ctx context.Context) error
	close func() error
}

func (r *registry) Ping(ctx context.Context) error {
	if err := r.ping(ctx); err != nil {
		return fmt.Errorf("registry %s: %w", r.url, err)
	}
	return nil
}

func (r *registry) Close() error { return r.close() }

// Services lists the registry's services (discovery.ServiceLister);
// DNS has no such list, and its error wraps errors.ErrUnsupported.
func (r *registry) Services(ctx context.Context) ([]string, error) {
	l, ok := r.Registry.(discovery.ServiceLister)
	if !ok {
		return nil, fmt.Errorf("registry %s cannot list its services: %w", r.url, errors.ErrUnsupported)
	}
	names, err := l.Services(ctx)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", r.url, err)
	}
	return names, nil
}

func (r *registry) String() string { return r.url }

func openEtcd(ctx context.Context, u *url.URL, cfg config) (*registry, error) {
	if u.Host == "" {
		return nil, errors.New("no etcd endpoint: want etcd://host:port[,host:port...]")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("etcd:// takes no path, got %q (the key prefix is the prefix parameter)", u.Path)
	}
	q, err := connurl.Query(u, append([]string{"prefix"}, connurl.TLSParams...)...)
	if err != nil {
		return nil, err
	}
	tc, err := connurl.TLS(q)
	if err != nil {
		return nil, err
	}
	scheme := "http://"
	if tc != nil {
		scheme = "https://"
	}
	opts := []etcd.Option{etcd.WithLogger(cfg.log), etcd.WithTimeout(cfg.timeout)}
	if q.Has("prefix") {
		opts = append(opts, etcd.WithPrefix(q.Get("prefix")))
	}
	ccfg := clientv3.Config{DialTimeout: cfg.timeout, Logger: zap.NewNop(), TLS: tc}
	for _, h := range strings.Split(u.Host, ",") {
		if h == "" {
			return nil, errors.New("empty etcd endpoint")
		}
		ccfg.Endpoints = append(ccfg.Endpoints, scheme+h)
	}
	if u.User != nil {
		pass, ok := u.User.Password()
		if !ok || u.User.Username() == "" {
			return nil, errors.New("etcd authentication needs a user name and a password: etcd://user:pass@host:port")
		}
		ccfg.Username, ccfg.Password = u.User.Username(), pass
	}
	// The client lives until Close; ctx bounds only its set-up (which
	// authenticates when a user is given).
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	ccfg.Context = cctx
	stop := context.AfterFunc(ctx, cancel)
	cli, err := clientv3.New(ccfg)
	if !stop() {
		err = errors.Join(ctx.Err(), err)
	}
	if err != nil {
		if cli != nil {
			cli.Close()
		}
		cancel()
		if ccfg.Username != "" && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("no answer from etcd at %s within %v to authenticate %q: %w", u.Host, cfg.timeout, ccfg.Username, err)
		}
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	reg, err := etcd.New(cli, opts...)
	if err != nil {
		cli.Close()
		cancel()
		return nil, err
	}
	return &registry{Registry: reg, ping: reg.Ping, close: func() error {
		defer cancel()
		return errors.Join(reg.Close(), cli.Close())
	}}, nil
}

func openDNS(u *url.URL, cfg config) (*registry, error) {
	if u.User != nil || (u.Path != "" && u.Path != "/") {
		return nil, errors.New("dns:// takes a DNS server, or nothing: dns://[server:port][?domain=...&interval=...]")
	}
	q, err := connurl.Query(u, "domain", "interval")
	if err != nil {
		return nil, err
	}
	opts := []dnssrv.Option{dnssrv.WithTimeout(cfg.timeout)}
	if u.Host != "" {
		opts = append(opts, dnssrv.WithServer(u.Host))
	}
	if q.Has("domain") {
		opts = append(opts, dnssrv.WithDomain(q.Get("domain")))
	}
	if s := q.Get("interval"); q.Has("interval") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("parameter interval=%q: want a duration such as 1s", s)
		}
		opts = append(opts, dnssrv.WithInterval(d))
	}
	reg, err := dnssrv.New(opts...)
	if err != nil {
		return nil, err
	}
	return &registry{Registry: reg, ping: reg.Ping, close: func() error { return nil }}, nil
}

func openMemory(u *url.URL) (*registry, error) {
	if u.Host != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.Opaque != "" {
		return nil, errors.New("memory:// takes no host or path")
	}
	if _, err := connurl.Query(u); err != nil {
		return nil, err
	}
	reg := memory.New()
	return &registry{Registry: reg, ping: func(context.Context) error { return nil }, close: reg.Close}, nil
}
