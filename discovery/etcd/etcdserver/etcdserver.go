// Package etcdserver runs a single-node etcd inside the process, for
// development and tests (`courier registry` is this package behind flags).
// Clients use the ordinary etcd client and the keys of package
// discovery/etcd, so a production etcd cluster replaces it without any
// change but the endpoints.
package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Config describes the embedded server.
type Config struct {
	// Dir holds the data; it survives restarts. Required.
	Dir string
	// ClientAddr is the host:port clients connect to; "127.0.0.1:0" (the
	// default) picks a free port.
	ClientAddr string
	// PeerAddr is the host:port of the raft peer listener; a free loopback
	// port by default.
	PeerAddr string
	// Name is the member name (default "courier").
	Name string
	// LogLevel is etcd's own log level (default "error").
	LogLevel string
	// StartTimeout bounds the start (default 30s).
	StartTimeout time.Duration
}

// Server is a running embedded etcd.
type Server struct {
	e        *embed.Etcd
	endpoint string
	cfg      Config
	once     sync.Once
}

// Start starts the server and waits until it serves clients.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("etcdserver: Dir is required")
	}
	if cfg.Name == "" {
		cfg.Name = "courier"
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "error"
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	var err error
	if cfg.ClientAddr, err = resolvePort(cfg.ClientAddr); err != nil {
		return nil, fmt.Errorf("etcdserver: client address: %w", err)
	}
	if cfg.PeerAddr, err = resolvePort(cfg.PeerAddr); err != nil {
		return nil, fmt.Errorf("etcdserver: peer address: %w", err)
	}
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	ec.LogLevel = cfg.LogLevel
	cu := url.URL{Scheme: "http", Host: cfg.ClientAddr}
	pu := url.URL{Scheme: "http", Host: cfg.PeerAddr}
	ec.ListenClientUrls, ec.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	ec.ListenPeerUrls, ec.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	ec.InitialCluster = ec.InitialClusterFromName(ec.Name)
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("etcdserver: start in %s: %w", cfg.Dir, err)
	}
	t := time.NewTimer(cfg.StartTimeout)
	defer t.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcdserver: start: %w", err)
	case <-t.C:
		e.Close()
		return nil, fmt.Errorf("etcdserver: not ready after %v", cfg.StartTimeout)
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("etcdserver: start: %w", ctx.Err())
	}
	return &Server{e: e, endpoint: cu.String(), cfg: cfg}, nil
}

// resolvePort replaces an empty address or port 0 with a free loopback port,
// so that the address can be advertised and reused on restart.
func resolvePort(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port != "0" {
		return addr, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Endpoint returns the client URL, e.g. "http://127.0.0.1:2379".
func (s *Server) Endpoint() string { return s.endpoint }

// Config returns the configuration with the chosen addresses filled in;
// Start(ctx, s.Config()) restarts the same member on the same data.
func (s *Server) Config() Config { return s.cfg }

// Err reports a fatal server error; it is only read by callers that want to
// stop when the server fails.
func (s *Server) Err() <-chan error { return s.e.Err() }

// Close stops the server. It is idempotent.
func (s *Server) Close() error {
	s.once.Do(s.e.Close)
	return nil
}
