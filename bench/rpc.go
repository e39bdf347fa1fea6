package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/rpc/grpcx"
	"github.com/courier-go/courier/rpc/httpx"
)

// The rpc suite: Courier's resilience policies on synchronous calls
// (rpc/httpx, rpc/grpcx) beside the bare clients, on loopback.

// rpcTimeout is the chain's timeout, which the bare clients' deadline
// variant (withDeadline) sets as well.
const rpcTimeout = 5 * time.Second

// rpcChain is the policy chain every chained client uses, as the packages'
// documentation composes it: retry, breaker, bulkhead and timeout, and a
// fallback given to the adapter.
func rpcChain(failure, retryable func(error) bool, opts ...resilience.Option) (*resilience.Chain, error) {
	return resilience.NewChain(append([]resilience.Option{
		resilience.WithLogger(slog.New(slog.DiscardHandler)),
		resilience.WithTimeout(rpcTimeout),
		resilience.WithBulkhead(100),
		resilience.WithCircuitBreaker(resilience.FailureIf(failure), resilience.OpenDelay(time.Hour)),
		resilience.WithRetry(resilience.RetryIf(retryable)),
	}, opts...)...)
}

// rpcPair is a bare client, the bare client with the chain's timeout as
// each call's deadline, and the same client through the chain, calling one
// loopback server, and what stops them. The middle one tells the cost of
// the deadline itself (a timer on each side, and the grpc-timeout header
// the gRPC server parses) from the rest of the chain's.
type rpcPair struct {
	Proto   string    // "HTTP" or "gRPC"
	Names   [3]string // bare, bare with a deadline, chained
	Calls   [3]caller
	closers []func()
}

// The indexes of rpcPair's callers.
const (
	rpcBare = iota
	rpcDeadline
	rpcChained
)

// withDeadline is call with rpcTimeout as its deadline, as a careful user
// of the bare client would call.
func withDeadline(call caller) caller {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		return call(ctx)
	}
}

func (p *rpcPair) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
}

// serveLoopback serves h on a fresh loopback port.
func serveLoopback(h http.Handler) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// httpCaller GETs url with c and checks that the server's two-byte body
// came back (a fallback's would not).
func httpCaller(c *http.Client, url string) caller {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength != 2 {
			return fmt.Errorf("unexpected response: %s, %d bytes", resp.Status, resp.ContentLength)
		}
		return nil
	}
}

// newHTTPPair starts a loopback HTTP server answering "ok", a bare
// net/http client and one whose transport is httpx's with the whole chain
// and a static fallback over the bare client's transport, so that both
// share one connection pool, large enough for conc callers (on pools of
// their own, calls interleaved across them measure the pools' state as
// much as the policies).
func newHTTPPair(conc int) (*rpcPair, error) {
	addr, stop, err := serveLoopback(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	if err != nil {
		return nil, err
	}
	p := &rpcPair{Proto: "HTTP", Names: [3]string{"net/http", "net/http, 5 s deadline", "net/http + httpx policies"}, closers: []func(){stop}}
	chain, err := rpcChain(httpx.Failure, httpx.Retryable)
	if err != nil {
		p.Close()
		return nil, err
	}
	bare := &http.Transport{MaxIdleConnsPerHost: conc}
	tr, err := httpx.NewTransport(chain, httpx.WithBase(bare),
		httpx.WithFallback(httpx.StaticResponse(http.StatusOK, nil, []byte("fallback"))))
	if err != nil {
		p.Close()
		return nil, err
	}
	p.closers = append(p.closers, bare.CloseIdleConnections)
	url := "http://" + addr + "/orders/1"
	bareCall := httpCaller(&http.Client{Transport: bare}, url)
	p.Calls = [3]caller{bareCall, withDeadline(bareCall), httpCaller(&http.Client{Transport: tr}, url)}
	return p, nil
}

// rpcTestServer answers every unary call of the gRPC interop test service.
type rpcTestServer struct {
	testpb.UnimplementedTestServiceServer
}

func (rpcTestServer) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Username: "ok"}, nil
}

// unaryMethod is the full name of the measured gRPC method.
const unaryMethod = "/grpc.testing.TestService/UnaryCall"

// grpcCaller makes a unary call and checks the server's reply came back.
func grpcCaller(c testpb.TestServiceClient) caller {
	req := &testpb.SimpleRequest{}
	return func(ctx context.Context) error {
		resp, err := c.UnaryCall(ctx, req)
		if err != nil {
			return err
		}
		if resp.GetUsername() != "ok" {
			return errors.New("unexpected reply")
		}
		return nil
	}
}

// newGRPCPair starts a loopback gRPC server, a bare grpc-go client
// connection, and calls through grpcx's unary interceptor applying the
// whole chain (the method marked idempotent, so that it may be retried)
// and a fallback. The chained calls run the interceptor around the same
// connection's Invoke, which is what grpc-go does for a connection dialled
// with grpc.WithChainUnaryInterceptor: so both share one HTTP/2
// connection. On a connection of its own, the chained client measured
// 10-15% slower than the bare one even with a chain that only sets the
// deadline, and as fast with the interceptor run on the bare one's
// connection: calls interleaved across two connections measure which
// connection is busier as much as the policies.
func newGRPCPair() (*rpcPair, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, rpcTestServer{})
	go func() { _ = srv.Serve(ln) }()
	p := &rpcPair{Proto: "gRPC", Names: [3]string{"grpc-go", "grpc-go, 5 s deadline", "grpc-go + grpcx policies"}, closers: []func(){srv.Stop}}
	fail := func(err error) (*rpcPair, error) {
		p.Close()
		return nil, err
	}
	chain, err := rpcChain(grpcx.Failure, grpcx.Retryable)
	if err != nil {
		return fail(err)
	}
	unary, err := grpcx.UnaryClientInterceptor(chain, grpcx.WithIdempotentMethods(unaryMethod),
		grpcx.WithFallback(grpcx.StaticReplies(nil)))
	if err != nil {
		return fail(err)
	}
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fail(err)
	}
	p.closers = append(p.closers, func() { _ = conn.Close() })
	bareCall := grpcCaller(testpb.NewTestServiceClient(conn))
	chained := grpcCaller(testpb.NewTestServiceClient(intercepted{conn, unary}))
	p.Calls = [3]caller{bareCall, withDeadline(bareCall), chained}
	return p, nil
}

// intercepted is a connection whose unary calls go through an
// interceptor, as those of a connection dialled with it do.
type intercepted struct {
	*grpc.ClientConn
	unary grpc.UnaryClientInterceptor
}

// Invoke runs the interceptor around the connection's own Invoke.
func (c intercepted) Invoke(ctx context.Context, method string, req, reply any, opts ...grpc.CallOption) error {
	return c.unary(ctx, method, req, reply, c.ClientConn, func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, opts ...grpc.CallOption) error {
		return cc.Invoke(ctx, method, req, reply, opts...)
	}, opts...)
}

// rpcPairs are the protocols the suite compares bare and chained clients
// on; New starts a pair for the given number of concurrent callers.
func rpcPairs() []struct {
	Proto string
	New   func(conc int) (*rpcPair, error)
} {
	return []struct {
		Proto string
		New   func(conc int) (*rpcPair, error)
	}{{"HTTP", newHTTPPair}, {"gRPC", func(int) (*rpcPair, error) { return newGRPCPair() }}}
}

// rpcModes are the rpc suite's two ways of calling: one caller, calls back
// to back (the round trip's latency), and 16 callers at once (contention
// on the policies' shared state).
func rpcModes(quick bool) []struct {
	Name string
	Cfg  pairConfig
} {
	seq := pairConfig{Rounds: 20, Batch: 500, Concurrency: 1, Warmup: 500}
	conc := pairConfig{Rounds: 20, Batch: 1600, Concurrency: 16, Warmup: 500}
	if quick {
		seq.Rounds, seq.Batch, seq.Warmup = 6, 200, 100
		conc.Rounds, conc.Batch, conc.Warmup = 4, 320, 100
	}
	return []struct {
		Name string
		Cfg  pairConfig
	}{{"sequential", seq}, {"16 concurrent callers", conc}}
}

// rpcRejection is a call refused by a policy without any network call.
type rpcRejection struct {
	System, Mode string
	// New builds the refused call, returning an operation that reports
	// whether the call was refused as it should be.
	New func() (func() bool, error)
}

// rejectOpenBreaker builds a chain whose breaker for key is open.
func rejectOpenBreaker(failure, retryable func(error) bool, key string) (*resilience.Chain, error) {
	c, err := rpcChain(failure, retryable)
	if err != nil {
		return nil, err
	}
	c.Breakers().Get(key).Open()
	return c, nil
}

// rejectFullBulkhead builds a chain whose bulkhead (of one) is taken.
func rejectFullBulkhead(failure, retryable func(error) bool, _ string) (*resilience.Chain, error) {
	c, err := rpcChain(failure, retryable, resilience.WithBulkhead(1))
	if err != nil {
		return nil, err
	}
	return c, c.Bulkhead().Acquire()
}

// rpcRejections are the refusals the suite times: by an open breaker and
// by a full bulkhead, through the chain alone (resilience.Wrap around an
// endpoint that does nothing), httpx's RoundTripper and grpcx's unary
// interceptor, each with the whole chain but no fallback (which would
// answer the refused call).
func rpcRejections() []rpcRejection {
	var out []rpcRejection
	for _, m := range []struct {
		mode   string
		chain  func(failure, retryable func(error) bool, key string) (*resilience.Chain, error)
		refuse error
	}{{"open breaker", rejectOpenBreaker, resilience.ErrBreakerOpen}, {"full bulkhead", rejectFullBulkhead, resilience.ErrBulkheadFull}} {
		out = append(out,
			rpcRejection{System: "resilience chain", Mode: m.mode, New: func() (func() bool, error) {
				c, err := m.chain(resilience.DefaultFailure, func(error) bool { return true }, "orders")
				if err != nil {
					return nil, err
				}
				e := resilience.Wrap(c, resilience.Spec[string, string]{
					Key:        func(string) string { return "orders" },
					Idempotent: func(string) bool { return true },
				}, func(context.Context, string) (string, error) { return "", nil })
				ctx := context.Background()
				return func() bool { _, err := e(ctx, "x"); return err == m.refuse }, nil
			}},
			rpcRejection{System: "httpx transport", Mode: m.mode, New: func() (func() bool, error) {
				c, err := m.chain(httpx.Failure, httpx.Retryable, "orders-1:8080")
				if err != nil {
					return nil, err
				}
				tr, err := httpx.NewTransport(c)
				if err != nil {
					return nil, err
				}
				req, err := http.NewRequest(http.MethodGet, "http://orders-1:8080/orders/1", nil)
				if err != nil {
					return nil, err
				}
				return func() bool { _, err := tr.RoundTrip(req); return err == m.refuse }, nil
			}},
			rpcRejection{System: "grpcx interceptor", Mode: m.mode, New: func() (func() bool, error) {
				c, err := m.chain(grpcx.Failure, grpcx.Retryable, "orders:443")
				if err != nil {
					return nil, err
				}
				in, err := grpcx.UnaryClientInterceptor(c, grpcx.WithIdempotentMethods(unaryMethod),
					grpcx.WithKey(func(context.Context, string, *grpc.ClientConn) string { return "orders:443" }))
				if err != nil {
					return nil, err
				}
				invoked := false
				invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
					invoked = true
					return nil
				}
				ctx, req, reply := context.Background(), &testpb.SimpleRequest{}, &testpb.SimpleResponse{}
				return func() bool {
					err := in(ctx, unaryMethod, req, reply, nil, invoker)
					return !invoked && errors.Is(err, m.refuse)
				}, nil
			}})
	}
	return out
}

// rpcSuiteT compares the resilience policies with the bare clients.
type rpcSuiteT struct{}

func rpcSuite() Suite { return rpcSuiteT{} }

// Name implements Suite.
func (rpcSuiteT) Name() string { return "rpc" }

// rpcTargets are the targets.
const (
	rpcMaxAddedP50   = 0.05
	rpcMaxRejectNs   = 1000
	rpcMaxRejectAllo = 0.01 // allocations per refused call: none, but for stray ones of other goroutines
)

// Run implements Suite.
func (rpcSuiteT) Run(ctx context.Context, o Options) ([]Table, error) {
	overhead := Table{ID: "rpc", Title: "policy chain vs bare clients, loopback",
		Columns: []string{"mode", "system", "calls/s", "p50", "p99", "allocs/call", "added p50", "added p50 over the deadline"}}
	rejections := Table{ID: "rpc-rejections", Title: "calls refused by a policy, no network call",
		Columns: []string{"system", "mode", "ns/op", "allocs/op"}}
	targets := Table{ID: "rpc-targets", Title: "targets", Columns: []string{"target", "measured", "met"}}
	var errs []error
	for _, mode := range rpcModes(o.Quick) {
		for _, pp := range rpcPairs() {
			p, err := pp.New(mode.Cfg.Concurrency)
			if err != nil {
				errs = append(errs, fmt.Errorf("rpc %s %s: %w", pp.Proto, mode.Name, err))
				overhead.Note("%s, %s: set-up failed: %v", pp.Proto, mode.Name, err)
				continue
			}
			sides, err := runInterleaved(ctx, mode.Cfg, p.Calls[:])
			p.Close()
			if err != nil {
				errs = append(errs, fmt.Errorf("rpc %s %s: %w", p.Proto, mode.Name, err))
				overhead.Note("%s, %s failed: %v", p.Proto, mode.Name, err)
				continue
			}
			bare, deadline, chained := sides[rpcBare], sides[rpcDeadline], sides[rpcChained]
			added, overDeadline := addedP50(bare, chained), addedP50(deadline, chained)
			for k, s := range sides {
				cells := []string{"-", "-"}
				switch k {
				case rpcDeadline:
					cells[0] = fmtSignedPercent(addedP50(bare, deadline))
				case rpcChained:
					cells = []string{fmtSignedPercent(added), fmtSignedPercent(overDeadline)}
				}
				overhead.AddRow(append([]string{mode.Name, p.Names[k], fmtRate(s.Rate()), fmtMicros(s.P50), fmtMicros(s.P99),
					fmtOneDecimal(s.AllocsPerCall())}, cells...)...)
			}
			for _, c := range []struct {
				what string
				base pairSide
			}{{"bare client", bare}, {"bare client with the deadline", deadline}} {
				rounds := roundsAdded(c.base, chained)
				overhead.Note("%s, %s: added p50 over the %s, per round (%d rounds of %d calls each) from %s to %s, median %s",
					p.Proto, mode.Name, c.what, len(rounds), bare.Calls/len(rounds), fmtSignedPercent(slices.Min(rounds)),
					fmtSignedPercent(slices.Max(rounds)), fmtSignedPercent(medianOf(rounds)))
			}
			o.progress("%-12s %-34s %-22s p50 %s vs %s bare (%s), %s with the deadline (%s)", "rpc", p.Names[rpcChained], mode.Name,
				fmtMicros(chained.P50), fmtMicros(bare.P50), fmtSignedPercent(added), fmtMicros(deadline.P50), fmtSignedPercent(overDeadline))
			if mode.Cfg.Concurrency == 1 {
				targets.AddRow(fmt.Sprintf("%s, sequential: added p50 <= 5%% over the bare client", p.Proto), fmtSignedPercent(added),
					metCell(added <= rpcMaxAddedP50))
				targets.AddRow(fmt.Sprintf("%s, sequential: added p50 <= 5%% over the bare client with the same deadline", p.Proto),
					fmtSignedPercent(overDeadline), metCell(overDeadline <= rpcMaxAddedP50))
			}
		}
	}
	d, rounds := time.Second, 5
	if o.Quick {
		d = 150 * time.Millisecond
	}
	for _, r := range rpcRejections() {
		op, err := r.New()
		var c opCost
		if err == nil {
			c, err = measureOp(ctx, d, rounds, op)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rpc %s, %s: %w", r.System, r.Mode, err))
			rejections.Note("%s, %s failed: %v", r.System, r.Mode, err)
			continue
		}
		o.progress("%-12s %-34s %-22s %6.0f ns/op  %.2f allocs/op", "rpc", r.System, r.Mode, c.NsPerOp, c.AllocsPerOp)
		rejections.AddRow(r.System, r.Mode, fmt.Sprintf("%.0f", c.NsPerOp), fmt.Sprintf("%.2f", c.AllocsPerOp))
		targets.AddRow(fmt.Sprintf("%s, %s: < 1 µs and 0 allocs", r.System, r.Mode),
			fmt.Sprintf("%.0f ns, %.2f allocs", c.NsPerOp, c.AllocsPerOp),
			metCell(c.NsPerOp < rpcMaxRejectNs && c.AllocsPerOp < rpcMaxRejectAllo))
	}
	overhead.Note("allocs/call counts the whole process: client, server and the request's construction alike on both sides; the difference is the policies'")
	return []Table{overhead, rejections, targets}, errors.Join(errs...)
}

// metCell is a targets table's verdict.
func metCell(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
