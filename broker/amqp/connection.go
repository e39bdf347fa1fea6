package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/internal/backoff"
)

// handshakeTimeout bounds a connection attempt (TCP, TLS and AMQP
// handshakes) when the caller's context allows more.
const handshakeTimeout = 15 * time.Second

// closeTimeout bounds the clean close of a connection.
const closeTimeout = 5 * time.Second

// errStopped is returned by waits that a subscription's stop ended.
var errStopped = errors.New("stopped")

// session is one established AMQP connection.
type session struct {
	conn   *amqp091.Connection
	closes chan *amqp091.Error
	lost   chan struct{} // closed once the supervisor noticed the loss
}

// connection keeps one AMQP connection up: a supervisor goroutine watches
// it and dials again, with backoff, when it is lost.
type connection struct {
	role     string // "publisher" or "consumer"
	url      string
	redacted string
	cfg      *config
	// frameSize is the largest AMQP frame, as negotiated by the first
	// connection.
	frameSize int

	mu      sync.Mutex
	current *session      // nil while disconnected
	ready   chan struct{} // closed when current is set
	lastErr error         // why the connection was lost or a redial failed
	closed  bool

	ctx    context.Context // cancelled by close: stops the supervisor
	cancel context.CancelFunc
	done   chan struct{} // closed when the supervisor returns
}

// openConnection dials url within ctx and starts the supervisor.
func openConnection(ctx context.Context, role, url, redacted string, cfg *config) (*connection, error) {
	conn, err := dial(ctx, url, cfg.connectionName+" "+role)
	if err != nil {
		return nil, err
	}
	c := &connection{
		role:      role,
		url:       url,
		redacted:  redacted,
		cfg:       cfg,
		frameSize: conn.Config.FrameSize,
		ready:     make(chan struct{}),
		done:      make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	s := c.install(conn)
	go c.supervise(s)
	return c, nil
}

// dial opens an AMQP connection, giving up when ctx ends. amqp091-go's
// dialer knows no context, so the socket's deadline is used to cut the
// handshakes short.
func dial(ctx context.Context, url, name string) (*amqp091.Connection, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// ctx's own end is enforced by the AfterFunc below, so that an
	// attempt it cuts short reports ctx's error.
	deadline := time.Now().Add(handshakeTimeout)
	var (
		mu        sync.Mutex
		netConn   net.Conn
		cancelled bool
	)
	props := amqp091.NewConnectionProperties()
	props.SetClientConnectionName(name)
	cfg := amqp091.Config{
		Properties: props,
		Dial: func(network, addr string) (net.Conn, error) {
			dctx, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			var d net.Dialer
			nc, err := d.DialContext(dctx, network, addr)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			netConn = nc
			if cancelled {
				deadline = time.Unix(1, 0)
			}
			// Cleared by amqp091-go once the AMQP handshake completes.
			if err := nc.SetDeadline(deadline); err != nil {
				nc.Close()
				return nil, err
			}
			return nc, nil
		},
	}
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		cancelled = true
		if netConn != nil {
			_ = netConn.SetDeadline(time.Unix(1, 0))
		}
	})
	conn, err := amqp091.DialConfig(url, cfg)
	if !stop() || (err != nil && ctx.Err() != nil) {
		// ctx ended during the attempt; the connection, if any, has a
		// deadline in the past and is unusable.
		if conn != nil {
			_ = conn.CloseDeadline(time.Now())
		}
		if err != nil {
			return nil, fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, describeDialError(err)
	}
	return conn, nil
}

// describeDialError adds a hint to the errors users most often meet.
func describeDialError(err error) error {
	var aerr *amqp091.Error
	switch {
	case errors.Is(err, amqp091.ErrVhost):
		return fmt.Errorf("no access to the virtual host: %w", err)
	case errors.Is(err, amqp091.ErrCredentials):
		return fmt.Errorf("wrong user name or password: %w", err)
	case errors.As(err, &aerr) && aerr.Code == amqp091.AccessRefused:
		return fmt.Errorf("access refused (wrong user name or password?): %w", err)
	case errors.As(err, &aerr) && aerr.Code == amqp091.NotAllowed:
		return fmt.Errorf("connection not allowed (virtual host or connection limit): %w", err)
	}
	var operr *net.OpError
	if errors.As(err, &operr) {
		return fmt.Errorf("server unreachable: %w", err)
	}
	return err
}

// install makes conn the current connection.
func (c *connection) install(conn *amqp091.Connection) *session {
	s := &session{conn: conn, closes: conn.NotifyClose(make(chan *amqp091.Error, 1)), lost: make(chan struct{})}
	c.mu.Lock()
	c.current = s
	close(c.ready)
	c.mu.Unlock()
	return s
}

// supervise watches the current connection and replaces it when it is
// lost, until close.
func (c *connection) supervise(s *session) {
	defer close(c.done)
	log := c.cfg.logger.With(slog.String("connection", c.role), slog.String("server", c.redacted))
	for {
		select {
		case err := <-s.closes:
			c.lose(s, err)
			log.Warn("courier: amqp connection lost; reconnecting", slog.Any("error", err))
		case <-c.ctx.Done():
			_ = s.conn.CloseDeadline(time.Now().Add(closeTimeout))
			c.lose(s, nil)
			return
		}
		started := time.Now()
		for failures := 0; ; failures++ {
			if failures > 0 && !c.pause(failures) {
				return
			}
			actx, cancel := context.WithTimeout(c.ctx, handshakeTimeout)
			conn, err := dial(actx, c.url, c.cfg.connectionName+" "+c.role)
			cancel()
			if err == nil {
				s = c.install(conn)
				log.Info("courier: amqp connection re-established", slog.Duration("outage", time.Since(started)))
				break
			}
			if c.ctx.Err() != nil {
				return
			}
			c.mu.Lock()
			c.lastErr = err
			c.mu.Unlock()
			level := slog.LevelDebug
			if failures == 0 || failures%20 == 0 {
				level = slog.LevelWarn
			}
			log.Log(c.ctx, level, "courier: amqp reconnection failed; will retry", slog.Int("attempt", failures+1), slog.Any("error", err))
		}
	}
}

// pause waits before the next connection attempt; it reports false when the
// connection is being closed.
func (c *connection) pause(failures int) bool {
	return backoff.Sleep(c.ctx, backoff.Jitter(backoff.Exponential(c.cfg.reconnectMin, c.cfg.reconnectMax, failures)))
}

func (c *connection) lose(s *session, err *amqp091.Error) {
	c.mu.Lock()
	if c.current == s {
		c.current = nil
		c.ready = make(chan struct{})
	}
	if err != nil {
		c.lastErr = err
	}
	c.mu.Unlock()
	close(s.lost)
}

// get returns the current connection, waiting for one while disconnected.
// It fails when ctx ends, when stop is closed (with errStopped) or when the
// connection is closed (with broker.ErrClosed).
func (c *connection) get(ctx context.Context, stop <-chan struct{}) (*session, error) {
	for {
		c.mu.Lock()
		closed, s, wait, lastErr := c.closed, c.current, c.ready, c.lastErr
		c.mu.Unlock()
		if closed {
			return nil, broker.ErrClosed
		}
		if s != nil {
			if !s.conn.IsClosed() {
				return s, nil
			}
			wait = s.lost
		}
		select {
		case <-wait:
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("%w while waiting for the %s connection to %s (%v)", ctx.Err(), c.role, c.redacted, lastErr)
			}
			return nil, ctx.Err()
		case <-stop:
			return nil, errStopped
		case <-c.ctx.Done():
			return nil, broker.ErrClosed
		}
	}
}

// close closes the connection and stops the supervisor.
func (c *connection) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	<-c.done
}
