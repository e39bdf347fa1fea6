// Package testnet gives tests network addresses that misbehave the way
// unreachable dependencies do, to check that clients report them within a
// deadline instead of waiting forever.
package testnet

import (
	"net"
	"sync"
	"testing"
)

// ClosedPort returns the address of a loopback TCP port that nothing
// listens on: connections to it are refused at once.
func ClosedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// SilentPort returns the address of a loopback TCP port that accepts
// connections and never answers on them, as a hung server or a
// black-holing firewall does. The test's cleanup closes the listener and
// the connections.
func SilentPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// Unreachable lists the kinds of unreachable address, by name, for
// table-driven tests.
var Unreachable = []struct {
	Name string
	Addr func(testing.TB) string
}{{"closed", ClosedPort}, {"silent", SilentPort}}
