package stomp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by calls on a connection that closed or failed;
// Conn.Err tells why.
var ErrClosed = errors.New("stomp: connection closed")

// ServerError is an ERROR frame the server sent.
type ServerError struct {
	Message string // its message header
	Details string // its body
}

func (e *ServerError) Error() string {
	if e.Details == "" {
		return "stomp: server error: " + e.Message
	}
	first, _, _ := strings.Cut(strings.TrimSpace(e.Details), "\n")
	return fmt.Sprintf("stomp: server error: %s (%s)", e.Message, first)
}

// Config is what Dial needs.
type Config struct {
	Login, Passcode string
	// Host is the virtual host (the host header of CONNECT).
	Host string
	// HeartBeat is the interval at which each side shows it is alive; 0
	// turns heart-beats off.
	HeartBeat time.Duration
	// TLS, if set, is used to dial.
	TLS *tls.Config
	// Limits bound the frames read.
	Limits Limits
}

// Conn is a STOMP connection. It is safe for concurrent use. A reader
// goroutine it owns reads frames until the connection closes; Close or a
// failure stops it and the heart-beat sender.
type Conn struct {
	nc net.Conn

	wmu sync.Mutex
	w   *bufio.Writer

	mu       sync.Mutex
	receipts map[string]chan error
	subs     map[string]func(*Frame)
	err      error

	next    atomic.Uint64
	done    chan struct{} // closed when the connection is finished
	stopped sync.WaitGroup
	once    sync.Once
	readAt  atomic.Int64 // unix nanos of the last byte read
}

// Dial connects to addr (host:port), within ctx, and completes the STOMP
// handshake.
func Dial(ctx context.Context, addr string, cfg Config) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stomp: dial %s: %w", addr, err)
	}
	if cfg.TLS != nil {
		tc := tls.Client(nc, cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("stomp: TLS handshake with %s: %w", addr, err)
		}
		nc = tc
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	c := &Conn{
		nc:       nc,
		w:        bufio.NewWriterSize(nc, 64<<10),
		receipts: make(map[string]chan error),
		subs:     make(map[string]func(*Frame)),
		done:     make(chan struct{}),
	}
	dec := NewDecoder(nc, cfg.Limits)
	connected, err := c.handshake(ctx, dec, cfg)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("stomp: connect to %s: %w", addr, err)
	}
	// Heart-beats: what the client sends is the larger of its wish and
	// the server's; it expects the server's beats at the larger of the
	// two, and counts the server dead after three missed.
	var send, expect time.Duration
	if cfg.HeartBeat > 0 {
		sx, sy := parseHeartBeat(connected.Value("heart-beat"))
		if sy > 0 {
			send = max(cfg.HeartBeat, sy)
		}
		if sx > 0 {
			expect = max(cfg.HeartBeat, sx)
		}
	}
	c.readAt.Store(time.Now().UnixNano())
	c.stopped.Add(1)
	go c.read(dec)
	if send > 0 || expect > 0 {
		c.stopped.Add(1)
		go c.beat(send, expect)
	}
	return c, nil
}

func (c *Conn) handshake(ctx context.Context, dec *Decoder, cfg Config) (*Frame, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	hb := "0,0"
	if cfg.HeartBeat > 0 {
		ms := strconv.FormatInt(cfg.HeartBeat.Milliseconds(), 10)
		hb = ms + "," + ms
	}
	f := &Frame{Command: "CONNECT"}
	f.Add("accept-version", "1.2")
	host := cfg.Host
	if host == "" {
		host = "localhost"
	}
	f.Add("host", host)
	f.Add("heart-beat", hb)
	if cfg.Login != "" {
		f.Add("login", cfg.Login)
		f.Add("passcode", cfg.Passcode)
	}
	if err := Encode(c.w, f); err != nil {
		return nil, err
	}
	if err := c.w.Flush(); err != nil {
		return nil, ctxErr(ctx, err)
	}
	for {
		r, err := dec.Decode()
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		switch r.Command {
		case "":
			continue
		case "CONNECTED":
			if v := r.Value("version"); v != "1.2" {
				return nil, fmt.Errorf("the server speaks STOMP %q, not 1.2", v)
			}
			_ = c.nc.SetDeadline(time.Time{})
			return r, nil
		case "ERROR":
			return nil, &ServerError{Message: r.Value("message"), Details: string(r.Body)}
		default:
			return nil, fmt.Errorf("%w: %s frame instead of CONNECTED", ErrMalformed, r.Command)
		}
	}
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func parseHeartBeat(v string) (sx, sy time.Duration) {
	a, b, ok := strings.Cut(v, ",")
	if !ok {
		return 0, 0
	}
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return time.Duration(x) * time.Millisecond, time.Duration(y) * time.Millisecond
}

// read dispatches frames until the connection fails.
func (c *Conn) read(dec *Decoder) {
	defer c.stopped.Done()
	for {
		f, err := dec.Decode()
		if err != nil {
			c.fail(fmt.Errorf("%w: read: %w", ErrClosed, err))
			return
		}
		c.readAt.Store(time.Now().UnixNano())
		switch f.Command {
		case "":
		case "MESSAGE":
			c.mu.Lock()
			deliver := c.subs[f.Value("subscription")]
			c.mu.Unlock()
			if deliver != nil {
				deliver(f)
			}
		case "RECEIPT":
			c.settle(f.Value("receipt-id"), nil)
		case "ERROR":
			serr := &ServerError{Message: f.Value("message"), Details: string(f.Body)}
			if id, ok := f.Get("receipt-id"); ok && c.settle(id, serr) {
				continue // an error about one frame; the connection may go on
			}
			c.fail(fmt.Errorf("%w: %w", ErrClosed, serr))
			return
		}
	}
}

// settle hands the outcome of a receipt to its waiter.
func (c *Conn) settle(id string, err error) bool {
	c.mu.Lock()
	ch, ok := c.receipts[id]
	delete(c.receipts, id)
	c.mu.Unlock()
	if ok {
		ch <- err
	}
	return ok
}

// beat sends heart-beats and watches the server's.
func (c *Conn) beat(send, expect time.Duration) {
	defer c.stopped.Done()
	tick := send
	if tick == 0 || (expect > 0 && expect < tick) {
		tick = expect
	}
	t := time.NewTicker(tick / 2)
	defer t.Stop()
	lastSent := time.Now()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			if expect > 0 && now.Sub(time.Unix(0, c.readAt.Load())) > 3*expect {
				c.fail(fmt.Errorf("%w: no heart-beat from the server for %v", ErrClosed, 3*expect))
				return
			}
			if send > 0 && now.Sub(lastSent) >= send/2 {
				c.wmu.Lock()
				c.w.WriteByte('\n')
				err := c.w.Flush()
				c.wmu.Unlock()
				if err != nil {
					c.fail(fmt.Errorf("%w: write heart-beat: %w", ErrClosed, err))
					return
				}
				lastSent = now
			}
		}
	}
}

// fail ends the connection with err, failing every waiting receipt.
func (c *Conn) fail(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		receipts := c.receipts
		c.receipts = make(map[string]chan error)
		c.mu.Unlock()
		for _, ch := range receipts {
			ch <- err
		}
		close(c.done)
		_ = c.nc.Close()
	})
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is up.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// write sends frames in one write.
func (c *Conn) write(frames ...*Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.Err(); err != nil {
		return err
	}
	for _, f := range frames {
		if err := Encode(c.w, f); err != nil {
			c.fail(fmt.Errorf("%w: write: %w", ErrClosed, err))
			return c.Err()
		}
	}
	if err := c.w.Flush(); err != nil {
		c.fail(fmt.Errorf("%w: write: %w", ErrClosed, err))
		return c.Err()
	}
	return nil
}

// Receipt is the pending outcome of a frame sent with a receipt.
type Receipt struct {
	ch <-chan error
	c  *Conn
}

// Wait returns nil once the server confirmed the frame, the server's
// error about it, an error wrapping ErrClosed if the connection ended
// first, or ctx's error.
func (r Receipt) Wait(ctx context.Context) error {
	select {
	case err := <-r.ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WithReceipt writes frames, each with a receipt header (replacing one it
// had), in one write and returns their receipts.
func (c *Conn) WithReceipt(frames ...*Frame) ([]Receipt, error) {
	out := make([]Receipt, len(frames))
	ids := make([]string, len(frames))
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	for i, f := range frames {
		ids[i] = "r" + strconv.FormatUint(c.next.Add(1), 10)
		ch := make(chan error, 1)
		c.receipts[ids[i]] = ch
		f.Headers = slices.DeleteFunc(f.Headers, func(h Header) bool { return h.Name == "receipt" })
		f.Add("receipt", ids[i])
		out[i] = Receipt{ch: ch, c: c}
	}
	c.mu.Unlock()
	if err := c.write(frames...); err != nil {
		return nil, err
	}
	return out, nil
}

// Request writes f with a receipt and waits for it within ctx.
func (c *Conn) Request(ctx context.Context, f *Frame) error {
	r, err := c.WithReceipt(f)
	if err != nil {
		return err
	}
	return r[0].Wait(ctx)
}

// Subscribe subscribes to destination with the subscription id id and the
// extra headers, and returns once the server confirmed it. deliver is
// called on the reader goroutine for each MESSAGE of the subscription, in
// order; it must not block for long, as it holds up every frame behind it.
func (c *Conn) Subscribe(ctx context.Context, id, destination string, headers []Header, deliver func(*Frame)) error {
	c.mu.Lock()
	c.subs[id] = deliver
	c.mu.Unlock()
	f := &Frame{Command: "SUBSCRIBE", Headers: append([]Header{{"id", id}, {"destination", destination}}, headers...)}
	if err := c.Request(ctx, f); err != nil {
		c.mu.Lock()
		delete(c.subs, id)
		c.mu.Unlock()
		return fmt.Errorf("stomp: subscribe to %s: %w", destination, err)
	}
	return nil
}

// Unsubscribe ends the subscription id and returns once the server
// confirmed it: the messages it delivered and were not acknowledged go
// back to their queue.
func (c *Conn) Unsubscribe(ctx context.Context, id string) error {
	err := c.Request(ctx, &Frame{Command: "UNSUBSCRIBE", Headers: []Header{{"id", id}}})
	c.mu.Lock()
	delete(c.subs, id)
	c.mu.Unlock()
	return err
}

// Ack acknowledges the message whose MESSAGE frame had the ack header id,
// without waiting for the server.
func (c *Conn) Ack(id string) error {
	return c.write(&Frame{Command: "ACK", Headers: []Header{{"id", id}}})
}

// Close says DISCONNECT, waits within ctx for the server's receipt (so
// that every frame sent before was processed) and closes the connection.
// It waits for the connection's goroutines.
func (c *Conn) Close(ctx context.Context) error {
	var err error
	if c.Err() == nil {
		err = c.Request(ctx, &Frame{Command: "DISCONNECT"})
		if errors.Is(err, ErrClosed) {
			err = nil
		}
	}
	c.fail(ErrClosed)
	c.stopped.Wait()
	return err
}

// Send writes f without a receipt.
func (c *Conn) Send(f *Frame) error { return c.write(f) }
