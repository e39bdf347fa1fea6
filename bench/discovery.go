package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/dnssrv"
	"github.com/courier-go/courier/discovery/etcd"
	"github.com/courier-go/courier/discovery/etcd/etcdserver"
	"github.com/courier-go/courier/discovery/httplb"
	"github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/discovery/router"
)

// The discovery suite: how long clients keep routing to a killed instance
// with each registry's default settings, and what the router adds to a
// call.

var discardLog = slog.New(slog.DiscardHandler)

// registryEnv is a running registry that the failover measurement
// registers instances in and resolves them through.
type registryEnv interface {
	// Registry is what clients resolve through.
	Registry() discovery.Registry
	// Add registers an instance of service listening on addr, with the
	// registry's default settings, and returns its kill: the instance
	// stops heartbeating without deregistering, as a kill -9 would.
	Add(ctx context.Context, service, addr string) (kill func(), err error)
	Close()
}

// failoverBackend is a registry of the failover table.
type failoverBackend struct {
	Name string
	// Bound is how long a killed instance is expected to stay: the lease
	// TTL, or the polling interval of a registry without leases.
	Bound      time.Duration
	BoundLabel string
	Start      func(ctx context.Context) (registryEnv, error)
}

func failoverBackends() []failoverBackend {
	return []failoverBackend{
		{Name: "memory", Bound: discovery.DefaultTTL, BoundLabel: "TTL", Start: startMemoryEnv},
		{Name: "etcd-embedded", Bound: discovery.DefaultTTL, BoundLabel: "TTL", Start: startEtcdEnv},
		{Name: "dns-srv", Bound: dnssrv.DefaultInterval, BoundLabel: "poll interval", Start: startDNSEnv},
	}
}

// abandoner is a lease that can stop heartbeating without deregistering
// (memory.Lease, etcd.Lease).
type abandoner interface{ Abandon() }

func register(ctx context.Context, reg discovery.Registry, service, addr string) (func(), error) {
	l, err := reg.Register(ctx, discovery.Instance{Service: service, ID: "i-" + strings.ReplaceAll(addr, ":", "-"), Address: addr})
	if err != nil {
		return nil, err
	}
	a, ok := l.(abandoner)
	if !ok {
		return nil, fmt.Errorf("lease %T cannot be abandoned", l)
	}
	return a.Abandon, nil
}

// memoryEnv is the in-process registry.
type memoryEnv struct{ reg *memory.Registry }

func startMemoryEnv(context.Context) (registryEnv, error) { return memoryEnv{memory.New()}, nil }

func (e memoryEnv) Registry() discovery.Registry { return e.reg }
func (e memoryEnv) Close()                       { _ = e.reg.Close() }
func (e memoryEnv) Add(ctx context.Context, service, addr string) (func(), error) {
	return register(ctx, e.reg, service, addr)
}

// etcdEnv is a single-node etcd in the process; each instance has a client
// and a registry of its own, as it would in its own process, and the
// clients share another.
type etcdEnv struct {
	srv     *etcdserver.Server
	dir     string
	cli     *clientv3.Client
	reg     *etcd.Registry
	mu      sync.Mutex
	closers []func()
}

func newEtcdRegistry(endpoint string) (*clientv3.Client, *etcd.Registry, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second,
		Logger: zap.NewNop()})
	if err != nil {
		return nil, nil, err
	}
	reg, err := etcd.New(cli, etcd.WithLogger(discardLog))
	if err != nil {
		cli.Close()
		return nil, nil, err
	}
	return cli, reg, nil
}

func startEtcdEnv(ctx context.Context) (registryEnv, error) {
	dir, err := os.MkdirTemp("", "courier-bench-etcd-")
	if err != nil {
		return nil, err
	}
	srv, err := etcdserver.Start(ctx, etcdserver.Config{Dir: dir, LogLevel: "fatal"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	e := &etcdEnv{srv: srv, dir: dir}
	if e.cli, e.reg, err = newEtcdRegistry(srv.Endpoint()); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *etcdEnv) Registry() discovery.Registry { return e.reg }

func (e *etcdEnv) Add(ctx context.Context, service, addr string) (func(), error) {
	cli, reg, err := newEtcdRegistry(e.srv.Endpoint())
	if err != nil {
		return nil, err
	}
	stop := sync.OnceFunc(func() { _ = reg.Close(); _ = cli.Close() })
	e.mu.Lock()
	e.closers = append(e.closers, stop)
	e.mu.Unlock()
	abandon, err := register(ctx, reg, service, addr)
	if err != nil {
		return nil, err
	}
	// The process dies: no more heartbeats, its connection to etcd closes.
	return func() { abandon(); go stop() }, nil
}

func (e *etcdEnv) Close() {
	e.mu.Lock()
	closers := e.closers
	e.mu.Unlock()
	for _, c := range closers {
		c()
	}
	if e.reg != nil {
		_ = e.reg.Close()
		_ = e.cli.Close()
	}
	_ = e.srv.Close()
	_ = os.RemoveAll(e.dir)
}

// dnsEnv is a DNS server on loopback serving SRV records, as a platform
// (Kubernetes for a headless service) maintains them; the registry polls
// it with its default interval. A kill is the platform removing the
// instance's record at once: the platform's own detection delay is not
// part of the figure.
type dnsEnv struct {
	reg    *dnssrv.Registry
	server *dns.Server
	mu     sync.Mutex
	srv    map[string][]*dns.SRV // by record name
}

const dnsDomain = "courier.test"

func startDNSEnv(context.Context) (registryEnv, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &dnsEnv{srv: map[string][]*dns.SRV{}}
	e.server = &dns.Server{PacketConn: pc, Handler: e}
	go func() { _ = e.server.ActivateAndServe() }()
	if e.reg, err = dnssrv.New(dnssrv.WithServer(pc.LocalAddr().String()), dnssrv.WithDomain(dnsDomain)); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *dnsEnv) Registry() discovery.Registry { return e.reg }
func (e *dnsEnv) Close()                       { _ = e.server.Shutdown() }

// ServeDNS answers SRV queries from the records and A queries for the
// records' targets ("<port>.hosts.courier.test", all on 127.0.0.1).
func (e *dnsEnv) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if strings.HasSuffix(name, ".hosts."+dnsDomain+".") {
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET},
				A: net.IPv4(127, 0, 0, 1)})
		}
	} else {
		e.mu.Lock()
		recs := e.srv[name]
		e.mu.Unlock()
		if len(recs) == 0 {
			m.Rcode = dns.RcodeNameError
		} else if q.Qtype == dns.TypeSRV {
			for _, r := range recs {
				m.Answer = append(m.Answer, r)
			}
		}
	}
	_ = w.WriteMsg(m)
}

func (e *dnsEnv) Add(_ context.Context, service, addr string) (func(), error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, err
	}
	name := e.reg.Name(service)
	rec := &dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET},
		Priority: 10, Weight: 50, Port: uint16(port), Target: p + ".hosts." + dnsDomain + "."}
	e.mu.Lock()
	e.srv[name] = append(e.srv[name], rec)
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		e.srv[name] = slices.DeleteFunc(slices.Clone(e.srv[name]), func(r *dns.SRV) bool { return r == rec })
		e.mu.Unlock()
	}, nil
}

// routeLog notes when httplb (which passes it every request it sends to an
// instance) last routed a request to each of the instances it was made
// for, as a time since start on the monotonic clock (0: never).
type routeLog struct {
	base  http.RoundTripper
	start time.Time
	last  map[string]*atomic.Int64 // by instance address, fixed when made
}

func newRouteLog(base http.RoundTripper, addrs ...string) routeLog {
	l := routeLog{base: base, start: time.Now(), last: map[string]*atomic.Int64{}}
	for _, a := range addrs {
		l.last[a] = new(atomic.Int64)
	}
	return l
}

func (l routeLog) RoundTrip(req *http.Request) (*http.Response, error) {
	if inst, ok := httplb.InstanceFrom(req); ok {
		if t := l.last[inst.Address]; t != nil {
			t.Store(int64(time.Since(l.start)))
		}
	}
	return l.base.RoundTrip(req)
}

func (l routeLog) lastRouted(addr string) time.Duration { return time.Duration(l.last[addr].Load()) }

var failoverRound atomic.Int64

// measureFailover registers two instances of a fresh service in env,
// calls the service through an httplb client until both have been routed
// to, then kills one (its registration stops heartbeating and its server
// closes) and calls on every millisecond until no call has been routed to
// it for quiet. It returns the time from the kill to the last call routed
// to the killed instance (0 if none was).
func measureFailover(ctx context.Context, env registryEnv, bound, quiet time.Duration) (time.Duration, error) {
	service := fmt.Sprintf("bench-failover-%d-%d", os.Getpid(), failoverRound.Add(1))
	var addrs [2]string
	var kills [2]func()
	var stops [2]func()
	defer func() {
		for i := range 2 {
			if kills[i] != nil && stops[i] != nil { // the survivor goes too
				kills[i]()
			}
			if stops[i] != nil {
				stops[i]()
			}
		}
	}()
	for i := range 2 {
		id := strconv.Itoa(i)
		addr, stop, err := serveLoopback(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, id) }))
		if err != nil {
			return 0, err
		}
		addrs[i], stops[i] = addr, stop
		if kills[i], err = env.Add(ctx, service, addr); err != nil {
			return 0, fmt.Errorf("register: %w", err)
		}
	}
	res, err := discovery.NewResolver(env.Registry(), discovery.WithLogger(discardLog))
	if err != nil {
		return 0, err
	}
	defer res.Close()
	base := &http.Transport{MaxIdleConnsPerHost: 2}
	defer base.CloseIdleConnections()
	routes := newRouteLog(base, addrs[:]...)
	lb, err := httplb.New(res, httplb.WithBase(routes))
	if err != nil {
		return 0, err
	}
	c := &http.Client{Transport: lb, Timeout: 2 * time.Second}
	call := func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+service+"/", nil)
		if err != nil {
			return
		}
		if resp, err := c.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	for deadline := time.Now().Add(10 * time.Second); routes.lastRouted(addrs[0]) == 0 || routes.lastRouted(addrs[1]) == 0; {
		if time.Now().After(deadline) {
			return 0, errors.New("the client never reached both instances")
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		call()
		time.Sleep(time.Millisecond)
	}
	killed := time.Since(routes.start)
	kills[1]()
	stops[1]()
	stops[1] = nil
	// Done once no call has gone to the killed instance for quiet.
	for {
		call()
		now := time.Since(routes.start)
		if now-routes.lastRouted(addrs[1]) >= quiet {
			break
		}
		if now-killed > 4*bound {
			return 0, fmt.Errorf("still routing to the killed instance %v after the kill", (now - killed).Round(time.Millisecond))
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		time.Sleep(time.Millisecond)
	}
	return max(routes.lastRouted(addrs[1])-killed, 0), nil
}

// failoverResult is the failover times of one backend.
type failoverResult struct {
	Times []time.Duration // sorted
}

func (r failoverResult) Median() time.Duration { return r.Times[len(r.Times)/2] }
func (r failoverResult) Max() time.Duration    { return r.Times[len(r.Times)-1] }

// runFailover starts the backend's registry and measures rounds
// failovers.
func runFailover(ctx context.Context, b failoverBackend, rounds int, quiet time.Duration) (failoverResult, error) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	env, err := b.Start(sctx)
	cancel()
	if err != nil {
		return failoverResult{}, fmt.Errorf("start: %w", err)
	}
	defer env.Close()
	var r failoverResult
	for range rounds {
		d, err := measureFailover(ctx, env, b.Bound, quiet)
		if err != nil {
			return r, err
		}
		r.Times = append(r.Times, d)
	}
	slices.Sort(r.Times)
	return r, nil
}

// routerPair is a loopback HTTP instance registered in a memory registry,
// with one client calling it directly and another through a
// discovery/router in front of it (defaults: least-outstanding balancer,
// ejection on connection failures).
func routerPair() (calls [2]caller, stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	reg := memory.New()
	stops = append(stops, func() { _ = reg.Close() })
	addr, stopInst, err := serveLoopback(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	if err != nil {
		return calls, nil, err
	}
	stops = append(stops, stopInst)
	if _, err = reg.Register(context.Background(), discovery.Instance{Service: "orders", ID: "o1", Address: addr}); err != nil {
		return calls, nil, err
	}
	res, err := discovery.NewResolver(reg, discovery.WithLogger(discardLog))
	if err != nil {
		return calls, nil, err
	}
	stops = append(stops, func() { _ = res.Close() })
	rt, err := router.New(res, []router.Route{{Prefix: "/orders/", Service: "orders"}}, router.WithLogger(discardLog))
	if err != nil {
		return calls, nil, err
	}
	routerAddr, stopRouter, err := serveLoopback(rt)
	if err != nil {
		return calls, nil, err
	}
	stops = append(stops, stopRouter)
	for k, host := range []string{addr, routerAddr} {
		tr := &http.Transport{}
		stops = append(stops, tr.CloseIdleConnections)
		calls[k] = httpCaller(&http.Client{Transport: tr}, "http://"+host+"/orders/1")
	}
	return calls, stop, nil
}

// routerConfig is the interleaved comparison of direct and routed calls.
func routerConfig(quick bool) pairConfig {
	if quick {
		return pairConfig{Rounds: 6, Batch: 200, Concurrency: 1, Warmup: 100}
	}
	return pairConfig{Rounds: 20, Batch: 500, Concurrency: 1, Warmup: 500}
}

// failoverRounds is the number of failovers per backend, and how long no
// call may go to the killed instance before it counts as gone.
func failoverRounds(quick bool) (int, time.Duration) {
	if quick {
		return 1, 500 * time.Millisecond
	}
	return 3, time.Second
}

// routerMaxAdded is the target for the router's p50 overhead.
const routerMaxAdded = 100 * time.Microsecond

// discoverySuiteT measures failover per registry and the router's
// overhead.
type discoverySuiteT struct{}

func discoverySuite() Suite { return discoverySuiteT{} }

// Name implements Suite.
func (discoverySuiteT) Name() string { return "discovery" }

// Run implements Suite.
func (discoverySuiteT) Run(ctx context.Context, o Options) ([]Table, error) {
	rounds, quiet := failoverRounds(o.Quick)
	fo := Table{ID: "discovery-failover", Title: "instance killed to last request routed to it, client-side (httplb)",
		Columns: []string{"system", "TTL or poll interval", "rounds", "failover median", "failover max", "max / TTL or interval"}}
	rt := Table{ID: "discovery-router", Title: "direct call vs through discovery/router, loopback",
		Columns: []string{"system", "calls/s", "p50", "p99", "allocs/call", "added p50"}}
	targets := Table{ID: "discovery-targets", Title: "targets", Columns: []string{"target", "measured", "met"}}
	var errs []error
	for _, b := range failoverBackends() {
		r, err := runFailover(ctx, b, rounds, quiet)
		if err != nil {
			errs = append(errs, fmt.Errorf("failover %s: %w", b.Name, err))
			fo.Note("%s failed: %v", b.Name, err)
			targets.AddRow(fmt.Sprintf("%s: failover <= 2x %s", b.Name, b.BoundLabel), "-", "not measured")
			continue
		}
		ratio := float64(r.Max()) / float64(b.Bound)
		o.progress("%-12s %-34s failover median %s, max %s (%.2fx)", "discovery", b.Name, fmtSeconds(r.Median()), fmtSeconds(r.Max()), ratio)
		fo.AddRow(b.Name, fmt.Sprintf("%s %s", fmtSeconds(b.Bound), b.BoundLabel), strconv.Itoa(len(r.Times)),
			fmtSeconds(r.Median()), fmtSeconds(r.Max()), fmt.Sprintf("%.2fx", ratio))
		targets.AddRow(fmt.Sprintf("%s: failover <= 2x %s (%s)", b.Name, b.BoundLabel, fmtSeconds(2*b.Bound)),
			fmtSeconds(r.Max()), metCell(r.Max() <= 2*b.Bound))
	}
	fo.Note("each round kills one of two instances just after it registered, as just after a heartbeat (every TTL/3, the default): the longest wait")
	fo.Note("dns-srv: the platform removes the record at the kill; its own detection delay comes on top")

	calls, stop, err := routerPair()
	if err == nil {
		var sides [2]pairSide
		sides, err = runPair(ctx, routerConfig(o.Quick), calls)
		stop()
		if err == nil {
			added := sides[1].P50 - sides[0].P50
			for k, name := range []string{"direct", "via discovery/router"} {
				cell := "-"
				if k == 1 {
					cell = "+" + fmtMicros(added)
				}
				s := sides[k]
				rt.AddRow(name, fmtRate(s.Rate()), fmtMicros(s.P50), fmtMicros(s.P99), fmtOneDecimal(s.AllocsPerCall()), cell)
			}
			o.progress("%-12s %-34s p50 %s vs %s direct (+%s)", "discovery", "router", fmtMicros(sides[1].P50),
				fmtMicros(sides[0].P50), fmtMicros(added))
			diffs := make([]float64, len(sides[0].RoundP50))
			for i := range diffs {
				diffs[i] = float64(sides[1].RoundP50[i] - sides[0].RoundP50[i])
			}
			rt.Note("added p50 per round (%d rounds of %d calls each) from %s to %s, median %s", len(diffs),
				sides[0].Calls/len(diffs), fmtMicros(time.Duration(slices.Min(diffs))),
				fmtMicros(time.Duration(slices.Max(diffs))), fmtMicros(time.Duration(medianOf(diffs))))
			targets.AddRow("router: added p50 < 100 µs", fmtMicros(added), metCell(added < routerMaxAdded))
		}
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("router: %w", err))
		rt.Note("failed: %v", err)
		targets.AddRow("router: added p50 < 100 µs", "-", "not measured")
	}
	return []Table{fo, rt, targets}, errors.Join(errs...)
}

// fmtSeconds formats a duration in seconds, e.g. "2.87 s".
func fmtSeconds(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
