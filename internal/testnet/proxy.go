package testnet

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a target address and can lose what
// passes through it, as a failing network does: Drop discards the bytes
// in both directions, Cut closes every open connection. A client that
// connects to Addr instead of the target can then be shown to lose a
// delivery or an acknowledgement in flight. The test's cleanup closes the
// listener and the connections.
type Proxy struct {
	l      net.Listener
	target string
	drop   atomic.Bool

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy starts a proxy to target on a loopback port.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = l.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Drop makes the proxy discard, while on is true, every byte it reads
// instead of forwarding it.
func (p *Proxy) Drop(on bool) { p.drop.Store(on) }

// Cut closes every connection open through the proxy; new ones are
// accepted as before.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

func (p *Proxy) accept() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(in, out) })
		p.wg.Go(func() { p.pipe(out, in) })
	}
}

// pipe copies src to dst until either fails, then closes both.
func (p *Proxy) pipe(src, dst net.Conn) {
	defer func() {
		_ = src.Close()
		_ = dst.Close()
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.drop.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // closed by Cut, or by either end
		}
	}
}

// CheckPing checks a Ping function of a client connected through p: it
// answers while the network works, fails within its context (1s) while p
// drops everything, and answers again, within 20s, once p forwards again.
func CheckPing(t testing.TB, ping func(context.Context) error, p *Proxy) {
	t.Helper()
	try := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return ping(ctx)
	}
	if err := try(); err != nil {
		t.Fatalf("Ping while the server is reachable: %v", err)
	}
	p.Drop(true)
	p.Cut()
	start := time.Now()
	err := try()
	if err == nil {
		t.Fatal("Ping succeeded while the network dropped everything")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Ping took %v to fail, beyond its 1s context", took)
	}
	t.Logf("Ping while unreachable: %v", err)
	p.Drop(false)
	p.Cut() // connections opened while dropping are half-made: start afresh
	deadline := time.Now().Add(20 * time.Second)
	for {
		if err = try(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Ping still failing 20s after the network came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
