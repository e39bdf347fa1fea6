package dnssrv_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/dnssrv"
	"github.com/courier-go/courier/discovery/httplb"
)

// platform is a DNS server on loopback whose SRV records the test edits, as
// a platform's controller would.
type platform struct {
	mu      sync.Mutex
	records map[string][]*dns.SRV // by name
	addr    string
	broken  bool
}

func newPlatform(t testing.TB) *platform {
	t.Helper()
	p := &platform{records: map[string][]*dns.SRV{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: p}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return p
}

func (p *platform) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken {
		m.Rcode = dns.RcodeServerFailure
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	if ip, ok := hosts[strings.ToLower(q.Name)]; ok {
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: net.ParseIP(ip)})
		}
		w.WriteMsg(m)
		return
	}
	recs, ok := p.records[strings.ToLower(q.Name)]
	if !ok {
		m.Rcode = dns.RcodeNameError
	}
	if q.Qtype == dns.TypeSRV {
		for _, r := range recs {
			m.Answer = append(m.Answer, r)
		}
	}
	w.WriteMsg(m)
}

// hosts are the A records the platform serves: the SRV targets.
var hosts = map[string]string{"host1.courier.test.": "127.0.0.1", "host2.courier.test.": "127.0.0.2"}

// target returns the SRV target naming an address's host.
func target(ip string) string {
	for name, a := range hosts {
		if a == ip {
			return name
		}
	}
	return dns.Fqdn(ip)
}

func (p *platform) set(name string, addrs ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var recs []*dns.SRV
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		n, _ := strconv.Atoi(port)
		recs = append(recs, &dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 0},
			Priority: 10, Weight: 50, Port: uint16(n), Target: target(host)})
	}
	p.records[name] = recs
}

func (p *platform) setBroken(b bool) {
	p.mu.Lock()
	p.broken = b
	p.mu.Unlock()
}

func newRegistry(t testing.TB, p *platform, opts ...dnssrv.Option) *dnssrv.Registry {
	t.Helper()
	r, err := dnssrv.New(append([]dnssrv.Option{dnssrv.WithServer(p.addr), dnssrv.WithDomain("courier.test")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ids(insts []discovery.Instance) string {
	var s []string
	for _, i := range insts {
		s = append(s, i.ID)
	}
	return strings.Join(s, ",")
}

func TestInstancesAndWatch(t *testing.T) {
	p := newPlatform(t)
	reg := newRegistry(t, p, dnssrv.WithInterval(20*time.Millisecond))
	ctx := context.Background()
	p.set("_orders._tcp.courier.test.", "127.0.0.2:8002", "127.0.0.1:8001")
	insts, err := reg.Instances(ctx, "orders")
	if err != nil || ids(insts) != "host1.courier.test:8001,host2.courier.test:8002" {
		t.Fatalf("Instances = %s, %v", ids(insts), err)
	}
	if insts[0].Metadata["weight"] != "50" || insts[0].Address != "127.0.0.1:8001" || insts[1].Address != "127.0.0.2:8002" {
		t.Fatalf("instance %+v", insts[0])
	}
	w, err := reg.Watch(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if got, err := w.Next(wctx); err != nil || len(got) != 2 {
		t.Fatalf("first Next = %s, %v", ids(got), err)
	}
	p.set("_orders._tcp.courier.test.", "127.0.0.1:8001")
	if got, err := w.Next(wctx); err != nil || ids(got) != "host1.courier.test:8001" {
		t.Fatalf("Next after removal = %s, %v", ids(got), err)
	}
}

func TestBadInput(t *testing.T) {
	p := newPlatform(t)
	reg := newRegistry(t, p)
	ctx := context.Background()
	_, err := reg.Instances(ctx, "payments")
	if !errors.Is(err, discovery.ErrUnknownService) || !strings.Contains(err.Error(), `"payments"`) {
		t.Fatalf("unknown service: %v", err)
	}
	_, err = reg.Register(ctx, discovery.Instance{Service: "orders", ID: "a", Address: "127.0.0.1:1"})
	if !errors.Is(err, discovery.ErrReadOnly) {
		t.Fatalf("Register: %v, want ErrReadOnly", err)
	}
	_, err = reg.Register(ctx, discovery.Instance{Service: "orders", ID: "a", Address: "127.0.0.1"})
	if !errors.Is(err, discovery.ErrInvalidInstance) {
		t.Fatalf("Register with a malformed address: %v", err)
	}
	p.setBroken(true)
	if _, err := reg.Instances(ctx, "orders"); err == nil || errors.Is(err, discovery.ErrUnknownService) {
		t.Fatalf("failing DNS server: %v, want a lookup error", err)
	}
	for _, o := range []dnssrv.Option{dnssrv.WithServer("nope"), dnssrv.WithDomain(""), dnssrv.WithInterval(0), dnssrv.WithKubernetes("", "", "")} {
		if _, err := dnssrv.New(o); err == nil {
			t.Error("invalid option accepted")
		}
	}
	k, _ := dnssrv.New(dnssrv.WithKubernetes("shop", "http", ""))
	if n := k.Name("orders"); n != "_http._tcp.orders.shop.svc.cluster.local." {
		t.Fatalf("Kubernetes name %q", n)
	}
}

func TestDNSOutageKeepsLastKnownInstances(t *testing.T) {
	p := newPlatform(t)
	reg := newRegistry(t, p, dnssrv.WithInterval(10*time.Millisecond))
	p.set("_orders._tcp.courier.test.", "127.0.0.1:8001")
	r, err := discovery.NewResolver(reg, discovery.WithRetry(5*time.Millisecond, 20*time.Millisecond),
		discovery.WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if got, err := r.Instances(ctx, "orders"); err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	p.setBroken(true)
	time.Sleep(100 * time.Millisecond)
	if got, err := r.Instances(ctx, "orders"); err != nil || len(got) != 1 {
		t.Fatalf("during the DNS outage: %v, %v; want the last known instance", got, err)
	}
}

// measureFailover removes one of two instances' records (the platform
// reacting to a kill) and returns how long clients kept routing to it.
func measureFailover(t testing.TB, opts ...dnssrv.Option) time.Duration {
	p := newPlatform(t)
	var addrs []string
	for _, id := range []string{"a", "b"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, id) }))
		t.Cleanup(srv.Close)
		addrs = append(addrs, strings.TrimPrefix(srv.URL, "http://"))
	}
	p.set("_orders._tcp.courier.test.", addrs...)
	r, err := discovery.NewResolver(newRegistry(t, p, opts...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	tr, err := httplb.New(r)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: tr}
	call := func() string {
		resp, err := c.Get("http://orders/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	call()
	removed := time.Now()
	p.set("_orders._tcp.courier.test.", addrs[0])
	var last time.Time
	for quietSince := time.Now(); time.Since(quietSince) < time.Second; time.Sleep(time.Millisecond) {
		if call() == "b" {
			last, quietSince = time.Now(), time.Now()
		}
		if time.Since(removed) > 10*dnssrv.DefaultInterval {
			t.Fatal("clients kept routing to the removed instance")
		}
	}
	if last.IsZero() {
		return 0
	}
	return last.Sub(removed)
}

func TestFailoverWithinInterval(t *testing.T) {
	d := measureFailover(t, dnssrv.WithInterval(100*time.Millisecond))
	if d > 200*time.Millisecond {
		t.Fatalf("clients routed to a removed instance for %v, want within 2 polling intervals", d)
	}
}

func BenchmarkFailover(b *testing.B) {
	for range b.N {
		d := measureFailover(b)
		b.ReportMetric(float64(d.Milliseconds()), "failover-ms")
	}
}

func Example() {
	// The records a platform keeps, e.g. for a Kubernetes headless service:
	// _http._tcp.orders.shop.svc.cluster.local SRV 10 50 8080 orders-0.orders.shop.svc.cluster.local.
	reg, err := dnssrv.New(dnssrv.WithKubernetes("shop", "http", "cluster.local"))
	if err != nil {
		panic(err)
	}
	fmt.Println(reg.Name("orders"))
	// Output: _http._tcp.orders.shop.svc.cluster.local.
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// silentDNS returns the address of a UDP port that reads queries and never
// answers them.
func silentDNS(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

// TestUnreachableServer checks that lookups from a DNS server that does
// not answer fail within the timeout, naming the server, and that Ping
// tells a server that answers (even that a name does not exist) from one
// that does not.
func TestUnreachableServer(t *testing.T) {
	const timeout = 300 * time.Millisecond
	if err := newRegistry(t, newPlatform(t)).Ping(context.Background()); err != nil {
		t.Fatalf("Ping of a server that answers: %v", err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := pc.LocalAddr().String()
	pc.Close()
	for name, addr := range map[string]string{"closed": closed, "silent": silentDNS(t)} {
		t.Run(name, func(t *testing.T) {
			r, err := dnssrv.New(dnssrv.WithServer(addr), dnssrv.WithTimeout(timeout))
			if err != nil {
				t.Fatal(err)
			}
			// The test's own deadline, should the timeout not work.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for op, f := range map[string]func() error{
				"Ping": func() error { return r.Ping(ctx) },
				"Instances": func() error {
					_, err := r.Instances(ctx, "orders")
					return err
				},
			} {
				start := time.Now()
				err := f()
				if took := time.Since(start); took > timeout+2*time.Second {
					t.Errorf("%s took %v with a timeout of %v", op, took, timeout)
				}
				if err == nil || !strings.Contains(err.Error(), addr) {
					t.Errorf("%s = %v, want an error naming %s", op, err, addr)
				}
			}
		})
	}
	if _, err := dnssrv.New(dnssrv.WithTimeout(0)); err == nil {
		t.Error("timeout 0 accepted")
	}
}
