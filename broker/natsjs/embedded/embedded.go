// Package embedded runs a NATS server with JetStream inside the process,
// Courier's default durable broker for single-process use: a service gets
// durable channels (through package natsjs) without running anything else,
// its streams kept as files in a directory of its choosing.
//
// It is a package of its own so that programs that use an external NATS
// cluster through natsjs do not compile the server.
package embedded

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/courier-go/courier/broker/natsjs"
)

// MaxPayload is the embedded server's max_payload: room for a
// payload of message.DefaultMaxPayloadBytes with its headers, and more.
const MaxPayload = 8 << 20

// defaultStartTimeout bounds Start when its context has no
// deadline.
const defaultStartTimeout = 30 * time.Second

// Option configures an embedded server.
type Option func(*config) error

type config struct {
	port   int // -1: no listener
	tls    *tls.Config
	logger *slog.Logger
	tweak  []func(*server.Options)
}

// WithListenPort makes the embedded server also accept connections from
// other processes on 127.0.0.1:port; port 0 picks a free port (see
// Server.ClientURL). Without it the server has no network listener and
// is reachable only from its own process.
func WithListenPort(port int) Option {
	return func(c *config) error {
		if port < 0 || port > 65535 {
			return fmt.Errorf("listen port must be between 0 and 65535, got %d", port)
		}
		c.port = port
		return nil
	}
}

// WithTLS makes the server's network listener (WithListenPort) speak TLS
// only, with c, a server configuration: its certificate, and, when
// c.ClientAuth requires and verifies client certificates (ClientCAs, as
// nats-server's verify option), only clients that present one the CAs
// signed may connect. In-process connections (Connect, Broker) do not use
// the network and need no TLS.
func WithTLS(c *tls.Config) Option {
	return func(cfg *config) error {
		if c == nil || (len(c.Certificates) == 0 && c.GetCertificate == nil) {
			return errors.New("TLS configuration needs a server certificate")
		}
		cfg.tls = c
		return nil
	}
}

// WithLogger sends the embedded server's notices, warnings and errors to
// l. Without it the server logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("server logger must not be nil")
		}
		c.logger = l
		return nil
	}
}

// WithServerOptions lets f change the nats-server options before the
// server starts, for settings this package does not cover (accounts,
// JetStream limits, a cluster...). The store directory and JetStream must
// stay enabled.
func WithServerOptions(f func(*server.Options)) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("server options function must not be nil")
		}
		c.tweak = append(c.tweak, f)
		return nil
	}
}

// Server is a nats-server with JetStream running inside the process.
// Its streams, consumers and messages are files in its directory, so that
// a server started again on the same directory carries on where the last
// one stopped.
type Server struct {
	srv *server.Server
	dir string
}

// Start starts a nats-server in the process with JetStream file
// storage in dir, which it creates if needed, and returns once it accepts
// connections. By default it listens on no network port; use Connect or
// Broker to reach it. Two servers must not share a directory at once.
func Start(ctx context.Context, dir string, opts ...Option) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("embedded: server: %w", err)
	}
	if dir == "" {
		return nil, errors.New("embedded: server: no store directory")
	}
	cfg := config{port: -1}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&cfg); err != nil {
			return nil, fmt.Errorf("embedded: server: %w", err)
		}
	}
	sopts := &server.Options{
		ServerName: "courier-embedded",
		JetStream:  true,
		StoreDir:   dir,
		MaxPayload: MaxPayload,
		NoSigs:     true,
		DontListen: true,
	}
	if cfg.port >= 0 {
		sopts.DontListen = false
		sopts.Host = "127.0.0.1"
		sopts.Port = cfg.port
		if cfg.port == 0 {
			sopts.Port = server.RANDOM_PORT
		}
	}
	if cfg.tls != nil {
		if cfg.port < 0 {
			return nil, errors.New("embedded: server: TLS needs a network listener (WithListenPort)")
		}
		sopts.TLS = true
		sopts.TLSConfig = cfg.tls
		sopts.TLSVerify = cfg.tls.ClientAuth == tls.RequireAndVerifyClientCert
		sopts.TLSTimeout = 2
	}
	for _, f := range cfg.tweak {
		f(sopts)
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("embedded: server in %s: %w", dir, err)
	}
	if cfg.logger != nil {
		srv.SetLogger(serverLogger{cfg.logger}, false, false)
	}
	srv.Start()
	wait := defaultStartTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if !srv.ReadyForConnections(wait) || !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded: server in %s did not start with JetStream within %v", dir, wait)
	}
	return &Server{srv: srv, dir: dir}, nil
}

// Dir returns the server's store directory.
func (e *Server) Dir() string { return e.dir }

// Server returns the nats-server, for monitoring and advanced uses.
func (e *Server) Server() *server.Server { return e.srv }

// ClientURL returns the URL at which other processes reach the server,
// or "" if it listens on no port (see WithListenPort).
func (e *Server) ClientURL() string {
	if e.srv.Addr() == nil {
		return ""
	}
	return e.srv.ClientURL()
}

// Connect returns a new in-process connection to the server. It does not
// try to reconnect: once the server shuts down, the connection is closed.
// opts come after those defaults.
func (e *Server) Connect(opts ...nats.Option) (*nats.Conn, error) {
	all := append([]nats.Option{
		nats.Name("courier-embedded"),
		nats.InProcessServer(e.srv),
		nats.NoReconnect(),
	}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("embedded: connect to the server: %w", err)
	}
	return nc, nil
}

// Broker returns a natsjs Broker on its own in-process connection to the
// server, which the Broker closes when it is closed. Options given by
// natsjs.WithNATSOptions apply to the connection.
func (e *Server) Broker(ctx context.Context, opts ...natsjs.Option) (*natsjs.Broker, error) {
	return natsjs.NewInProcess(ctx, e.srv, opts...)
}

// Shutdown stops the server, closing its connections, and waits until it
// has written everything to its directory. If ctx ends first it returns
// ctx's error; the server then finishes shutting down in the background.
func (e *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("embedded: server shutdown: %w", ctx.Err())
	}
}

// serverLogger passes the server's logs to slog.
type serverLogger struct{ l *slog.Logger }

func (s serverLogger) log(level slog.Level, format string, v []any) {
	s.l.Log(context.Background(), level, "nats-server: "+fmt.Sprintf(format, v...))
}

func (s serverLogger) Noticef(format string, v ...any) { s.log(slog.LevelInfo, format, v) }
func (s serverLogger) Warnf(format string, v ...any)   { s.log(slog.LevelWarn, format, v) }
func (s serverLogger) Fatalf(format string, v ...any)  { s.log(slog.LevelError, format, v) }
func (s serverLogger) Errorf(format string, v ...any)  { s.log(slog.LevelError, format, v) }
func (s serverLogger) Debugf(format string, v ...any)  { s.log(slog.LevelDebug, format, v) }
func (s serverLogger) Tracef(format string, v ...any)  { s.log(slog.LevelDebug-4, format, v) }

var _ server.Logger = serverLogger{}
