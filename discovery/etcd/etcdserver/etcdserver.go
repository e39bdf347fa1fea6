// Package etcdserver runs a single-node etcd inside the process, for
// development and tests (`courier registry` is this package behind flags).
// Clients use the ordinary etcd client and the keys of package
// discovery/etcd, so a production etcd cluster replaces it without any
// change but the endpoints.
//
// By default it serves plain HTTP to anyone who reaches its address (a
// loopback one unless told otherwise). Config.CertFile and KeyFile make it
// serve TLS only, Config.ClientCAFile require a client certificate, and
// Config.Users turn etcd's authentication on: every request must then
// come from a user, by password or by a client certificate whose common
// name is the user's name, and only users with write access may register.
package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/courier-go/courier/internal/tlsconfig"
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

	// CertFile and KeyFile, when set, make the client listener serve TLS
	// only (https://) with this certificate and key (PEM files).
	CertFile, KeyFile string
	// ClientCAFile, when set with CertFile and KeyFile, makes the client
	// listener require of every client a certificate signed by one of
	// the CAs in it (PEM). With Users, the certificate's common name is
	// the user a request without a password comes from.
	ClientCAFile string

	// Users, when not empty, turn authentication on: requests must come
	// from one of them. One must be "root", who may do anything (etcd
	// requires it). The others may read, or read and write, the keys
	// under Prefix. They are created the first time the server starts on
	// Dir; on later starts they must still have these passwords (change
	// them with etcdctl).
	Users []User
	// Prefix is the key prefix the users' permissions cover (default
	// "/courier/services/", package discovery/etcd's).
	Prefix string
}

// User is a user of the registry.
type User struct {
	Name, Password string
	// ReadOnly users may read the keys under the prefix; the others may
	// also write them (register instances).
	ReadOnly bool
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
	if err := checkSecurity(&cfg); err != nil {
		return nil, err
	}
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	ec.LogLevel = cfg.LogLevel
	cu := url.URL{Scheme: "http", Host: cfg.ClientAddr}
	if cfg.CertFile != "" {
		cu.Scheme = "https"
		ec.ClientTLSInfo = transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.ClientCAFile,
			ClientCertAuth: cfg.ClientCAFile != ""}
	}
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
	if len(cfg.Users) > 0 {
		if err := enableAuth(ctx, e.Server, cfg); err != nil {
			e.Close()
			return nil, err
		}
	}
	return &Server{e: e, endpoint: cu.String(), cfg: cfg}, nil
}

// checkSecurity checks the TLS files and users of cfg.
func checkSecurity(cfg *Config) error {
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return errors.New("etcdserver: TLS needs both a certificate file and a key file")
	}
	if cfg.ClientCAFile != "" && cfg.CertFile == "" {
		return errors.New("etcdserver: client certificates need TLS: give a certificate file and a key file")
	}
	if cfg.CertFile != "" {
		if _, err := tlsconfig.Server(cfg.CertFile, cfg.KeyFile, cfg.ClientCAFile); err != nil {
			return fmt.Errorf("etcdserver: %w", err)
		}
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaultPrefix
	}
	if len(cfg.Users) == 0 {
		return nil
	}
	return CheckUsers(cfg.Users)
}

// CheckUsers checks users for Config.Users: each has a name and a
// password, no name is given twice, and "root" is one of them and not
// read-only.
func CheckUsers(users []User) error {
	seen := map[string]bool{}
	for _, u := range users {
		switch {
		case u.Name == "" || u.Password == "":
			return errors.New("etcdserver: every user needs a name and a password")
		case seen[u.Name]:
			return fmt.Errorf("etcdserver: user %q given twice", u.Name)
		case u.Name == rootUser && u.ReadOnly:
			return errors.New("etcdserver: the root user cannot be read-only")
		}
		seen[u.Name] = true
	}
	if !seen[rootUser] {
		return errors.New(`etcdserver: authentication needs a "root" user`)
	}
	return nil
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
