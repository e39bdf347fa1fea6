package etcd_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/etcd"
	"github.com/courier-go/courier/discovery/etcd/etcdserver"
	"github.com/courier-go/courier/discovery/httplb"
	"github.com/courier-go/courier/discovery/registrytest"
)

const childEnv = "COURIER_DISCOVERY_ETCD_CHILD"

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// runChild is a service instance: an HTTP server answering with its ID that
// registers itself in etcd with the default TTL, until it is killed.
func runChild() int {
	id, service, endpoint := os.Getenv(childEnv), os.Getenv("COURIER_TEST_SERVICE"), os.Getenv("COURIER_TEST_ETCD")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, id) }))
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	reg, err := etcd.New(cli, etcd.WithLogger(quietLog))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sr, err := discovery.NewSelfRegistrar(reg, discovery.Instance{Service: service, ID: id, Address: l.Addr().String()},
		discovery.WithSelfLogger(quietLog))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() {
		<-sr.Registered()
		fmt.Println("registered")
	}()
	if err := sr.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startInstance starts a child instance and waits until it is registered.
func startInstance(t testing.TB, service, id string) *exec.Cmd {
	t.Helper()
	return startInstanceAt(t, server.Endpoint(), service, id)
}

func startInstanceAt(t testing.TB, endpoint, service, id string) *exec.Cmd {
	t.Helper()
	return startChild(t, "instance "+id, "registered", 30*time.Second,
		childEnv+"="+id, "COURIER_TEST_SERVICE="+service, "COURIER_TEST_ETCD="+endpoint)
}

// startChild runs the test binary again with env added, as the child
// process what, and waits up to timeout for its first line of output to
// be ready. The child is killed when the test ends.
func startChild(t testing.TB, what, ready string, timeout time.Duration, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		io.Copy(io.Discard, out)
	}()
	select {
	case s := <-line:
		if strings.TrimSpace(s) != ready {
			t.Fatalf("%s: %q", what, s)
		}
	case <-time.After(timeout):
		t.Fatalf("%s did not start", what)
	}
	return cmd
}

// recorder notes when each instance was last routed to.
type recorder struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if inst, ok := httplb.InstanceFrom(req); ok {
		r.mu.Lock()
		r.last[inst.ID] = time.Now()
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) lastRouted(id string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[id]
}

func newHTTPClient(t testing.TB, reg discovery.Registry) (*http.Client, *recorder) {
	t.Helper()
	res, err := discovery.NewResolver(reg, discovery.WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	rec := &recorder{last: map[string]time.Time{}}
	tr, err := httplb.New(res, httplb.WithBase(rec))
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Second}, rec
}

// measureFailover kills instance b with SIGKILL and returns how long clients
// kept routing to it.
func measureFailover(t testing.TB, c *http.Client, rec *recorder, service string, b *exec.Cmd) time.Duration {
	t.Helper()
	for i := 0; rec.lastRouted("b").IsZero() || rec.lastRouted("a").IsZero(); i++ {
		get(c, "http://"+service+"/")
		if i > 1000 {
			t.Fatal("clients never reached both instances")
		}
		time.Sleep(time.Millisecond)
	}
	killed := time.Now()
	b.Process.Signal(syscall.SIGKILL)
	deadline := killed.Add(4 * discovery.DefaultTTL)
	var quiet, prev time.Time
	for {
		get(c, "http://"+service+"/")
		if last := rec.lastRouted("b"); last != prev {
			prev, quiet = last, time.Time{}
		} else if quiet.IsZero() {
			quiet = time.Now()
		} else if time.Since(quiet) > time.Second {
			break // a second without routing to b
		}
		if time.Now().After(deadline) {
			t.Fatalf("still routing to the killed instance %v after the kill", time.Since(killed))
		}
		time.Sleep(2 * time.Millisecond)
	}
	last := rec.lastRouted("b")
	if last.Before(killed) {
		return 0
	}
	return last.Sub(killed)
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestKilledInstanceLeavesClientsWithinTwoTTL(t *testing.T) {
	service := registrytest.Service(t)
	startInstance(t, service, "a")
	b := startInstance(t, service, "b")
	c, rec := newHTTPClient(t, newRegistry(t))
	d := measureFailover(t, c, rec, service, b)
	t.Logf("failover after kill -9: %v (TTL %v)", d, discovery.DefaultTTL)
	if d > 2*discovery.DefaultTTL {
		t.Fatalf("clients routed to the killed instance for %v, want within 2x TTL (%v)", d, 2*discovery.DefaultTTL)
	}
	if body, err := get(c, "http://"+service+"/"); err != nil || body != "a" {
		t.Fatalf("after failover: %q, %v; want the surviving instance", body, err)
	}
}

func BenchmarkFailover(b *testing.B) {
	for range b.N {
		service := registrytest.Service(b)
		startInstance(b, service, "a")
		victim := startInstance(b, service, "b")
		c, rec := newHTTPClient(b, newRegistry(b))
		b.ResetTimer()
		d := measureFailover(b, c, rec, service, victim)
		b.ReportMetric(float64(d.Milliseconds()), "failover-ms")
	}
}

const serverEnv = "COURIER_DISCOVERY_ETCD_SERVER"

// runServer is an etcd server process, killed with SIGKILL by the outage test.
func runServer() int {
	var cfg etcdserver.Config
	cfg.Dir, cfg.LogLevel = os.Getenv(serverEnv), "fatal"
	cfg.ClientAddr, cfg.PeerAddr = os.Getenv("COURIER_TEST_CLIENT_ADDR"), os.Getenv("COURIER_TEST_PEER_ADDR")
	s, err := etcdserver.Start(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	fmt.Fprintln(os.Stderr, <-s.Err())
	return 1
}

// startServerProcess runs etcd in a child process on the given addresses.
func startServerProcess(t *testing.T, dir, clientAddr, peerAddr string) *exec.Cmd {
	t.Helper()
	return startChild(t, "etcd process", "ready", time.Minute,
		serverEnv+"="+dir, "COURIER_TEST_CLIENT_ADDR="+clientAddr, "COURIER_TEST_PEER_ADDR="+peerAddr)
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestRegistryOutageKeepsLastKnownInstances kills etcd (a separate process)
// with SIGKILL under running clients and instances, then starts it again.
func TestRegistryOutageKeepsLastKnownInstances(t *testing.T) {
	dir, clientAddr, peerAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	etcdProc := startServerProcess(t, dir, clientAddr, peerAddr)
	endpoint := "http://" + clientAddr
	service := registrytest.Service(t)
	startInstanceAt(t, endpoint, service, "a")
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	reg, err := etcd.New(cli, etcd.WithLogger(quietLog))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	c, _ := newHTTPClient(t, reg)
	if body, err := get(c, "http://"+service+"/"); err != nil || body != "a" {
		t.Fatalf("before the outage: %q, %v", body, err)
	}
	etcdProc.Process.Signal(syscall.SIGKILL)
	etcdProc.Wait()
	// Longer than the TTL: clients keep calling the last known instance.
	for end := time.Now().Add(discovery.DefaultTTL + time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if body, err := get(c, "http://"+service+"/"); err != nil || body != "a" {
			t.Fatalf("during the outage: %q, %v; want the last known instance", body, err)
		}
	}
	startServerProcess(t, dir, clientAddr, peerAddr)
	// The instance re-registers if its lease was lost, and clients follow
	// changes made after the outage.
	startInstanceAt(t, endpoint, service, "b")
	seen := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for !seen["a"] || !seen["b"] {
		body, _ := get(c, "http://"+service+"/")
		seen[body] = true
		if time.Now().After(deadline) {
			t.Fatalf("after the outage clients reached only %v, want a and b", seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
