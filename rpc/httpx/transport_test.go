package httpx_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/rpc/httpx"
)

type mode int32

const (
	healthy   mode = iota
	failing        // 503 with Retry-After
	hanging        // until the request's context ends
	resetting      // hijack and reset the connection
	slow           // 50ms, then 200
)

// faultServer is a loopback HTTP server whose behaviour the test switches.
type faultServer struct {
	*httptest.Server
	mode       atomic.Int32
	retryAfter atomic.Value // string
	hits       atomic.Int64
	entered    chan struct{}
	cancelled  chan error
}

func newFaultServer(t *testing.T) *faultServer {
	s := &faultServer{entered: make(chan struct{}, 100), cancelled: make(chan error, 100)}
	s.retryAfter.Store("")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		switch mode(s.mode.Load()) {
		case failing:
			if ra := s.retryAfter.Load().(string); ra != "" {
				w.Header().Set("Retry-After", ra)
			}
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case hanging:
			s.entered <- struct{}{}
			<-r.Context().Done()
			s.cancelled <- r.Context().Err()
		case resetting:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			_ = conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		case slow:
			time.Sleep(50 * time.Millisecond)
			io.WriteString(w, "slow ok")
		default:
			body, _ := io.ReadAll(r.Body)
			io.WriteString(w, "ok "+string(body))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *faultServer) set(m mode) { s.mode.Store(int32(m)) }

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newClient(t *testing.T, opts ...resilience.Option) (*http.Client, *resilience.Chain) {
	t.Helper()
	c, err := resilience.NewChain(append([]resilience.Option{resilience.WithLogger(quiet())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := httpx.NewTransport(c, httpx.WithBase(&http.Transport{}))
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: tr}, c
}

func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestBreakerAgainstFailingServer(t *testing.T) {
	srv := newFaultServer(t)
	client, chain := newClient(t, resilience.WithCircuitBreaker(resilience.FailureCount(3, 3),
		resilience.OpenDelay(100*time.Millisecond), resilience.FailureIf(httpx.Failure)))
	key := strings.TrimPrefix(srv.URL, "http://")

	srv.set(failing)
	for range 3 {
		if code, body, err := get(client, srv.URL); err != nil || code != 503 || !strings.Contains(body, "overloaded") {
			t.Fatalf("failing server: %d %q %v; want the 503 itself", code, body, err)
		}
	}
	if got := chain.Breakers().State(key); got != resilience.Open {
		t.Fatalf("breaker %v after 3 failures, want open", got)
	}
	hits := srv.hits.Load()
	if _, _, err := get(client, srv.URL); !errors.Is(err, resilience.ErrBreakerOpen) {
		t.Fatalf("call while open: %v", err)
	}
	if srv.hits.Load() != hits {
		t.Fatal("the open breaker let a request reach the server")
	}

	srv.set(healthy)
	time.Sleep(120 * time.Millisecond)
	if code, _, err := get(client, srv.URL); err != nil || code != 200 {
		t.Fatalf("probe: %d %v", code, err)
	}
	if got := chain.Breakers().State(key); got != resilience.Closed {
		t.Fatalf("breaker %v after a good probe, want closed", got)
	}
}

func TestBulkheadRejectsExcessImmediately(t *testing.T) {
	srv := newFaultServer(t)
	srv.set(hanging)
	client, chain := newClient(t, resilience.WithBulkhead(2))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	<-srv.entered
	<-srv.entered
	start := time.Now()
	_, _, err := get(client, srv.URL)
	if !errors.Is(err, resilience.ErrBulkheadFull) {
		t.Fatalf("third call: %v", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("rejection took %v", d)
	}
	if srv.hits.Load() != 2 {
		t.Fatalf("server hits %d, want 2", srv.hits.Load())
	}
	if chain.Bulkhead().InUse() != 2 {
		t.Fatalf("InUse %d", chain.Bulkhead().InUse())
	}
	cancel()
	wg.Wait()
}

func TestTimeoutCancelsServerWork(t *testing.T) {
	srv := newFaultServer(t)
	srv.set(hanging)
	client, _ := newClient(t, resilience.WithTimeout(50*time.Millisecond))
	start := time.Now()
	_, _, err := get(client, srv.URL)
	if !errors.Is(err, resilience.ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 2*time.Second {
		t.Fatalf("returned after %v", d)
	}
	select {
	case err := <-srv.cancelled:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("server context ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server's request context was not cancelled")
	}
}

func TestTimeoutCoversTheBody(t *testing.T) {
	srv := newFaultServer(t)
	srv.set(slow)
	client, _ := newClient(t, resilience.WithTimeout(2*time.Second))
	// The attempt's context must survive until the body is read.
	if code, body, err := get(client, srv.URL); err != nil || code != 200 || body != "slow ok" {
		t.Fatalf("%d %q %v", code, body, err)
	}
}

func TestRetry(t *testing.T) {
	t.Run("Retry-After is honoured", func(t *testing.T) {
		srv := newFaultServer(t)
		srv.set(failing)
		srv.retryAfter.Store("1")
		client, _ := newClient(t, resilience.WithRetry(resilience.MaxAttempts(2), resilience.RetryIf(httpx.Retryable),
			resilience.Backoff(time.Millisecond, time.Millisecond)))
		go func() {
			time.Sleep(200 * time.Millisecond)
			srv.set(healthy)
		}()
		start := time.Now()
		code, _, err := get(client, srv.URL)
		if err != nil || code != 200 {
			t.Fatalf("%d %v", code, err)
		}
		if d := time.Since(start); d < time.Second {
			t.Fatalf("retried after %v, before Retry-After: 1", d)
		}
		if srv.hits.Load() != 2 {
			t.Fatalf("hits %d", srv.hits.Load())
		}
	})
	t.Run("replays the body of an idempotent PUT", func(t *testing.T) {
		srv := newFaultServer(t)
		client, _ := newClient(t, resilience.WithRetry(resilience.MaxAttempts(3), resilience.Backoff(time.Millisecond, time.Millisecond)))
		srv.set(resetting)
		go func() {
			for srv.hits.Load() < 1 {
				time.Sleep(time.Millisecond)
			}
			srv.set(healthy)
		}()
		req, _ := http.NewRequest("PUT", srv.URL, strings.NewReader("payload"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok payload" {
			t.Fatalf("body %q", b)
		}
	})
	t.Run("POST is not retried", func(t *testing.T) {
		srv := newFaultServer(t)
		srv.set(failing)
		client, _ := newClient(t, resilience.WithRetry(resilience.Backoff(time.Millisecond, time.Millisecond)))
		resp, err := client.Post(srv.URL, "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if srv.hits.Load() != 1 {
			t.Fatalf("POST sent %d times", srv.hits.Load())
		}
	})
	t.Run("500 is not retried by Retryable", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bug", http.StatusInternalServerError)
		}))
		defer srv.Close()
		var hits atomic.Int64
		c, _ := resilience.NewChain(resilience.WithRetry(resilience.RetryIf(httpx.Retryable)))
		tr, _ := httpx.NewTransport(c, httpx.WithBase(roundTripFunc(func(r *http.Request) (*http.Response, error) {
			hits.Add(1)
			return http.DefaultTransport.RoundTrip(r)
		})))
		resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
		if err != nil || resp.StatusCode != 500 {
			t.Fatalf("%v %v", resp, err)
		}
		resp.Body.Close()
		if hits.Load() != 1 {
			t.Fatalf("sent %d times", hits.Load())
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestConnectionResetCountsAsFailure(t *testing.T) {
	srv := newFaultServer(t)
	srv.set(resetting)
	client, chain := newClient(t, resilience.WithCircuitBreaker(resilience.FailureCount(2, 2), resilience.OpenDelay(time.Minute)))
	for range 2 {
		if _, _, err := get(client, srv.URL); err == nil {
			t.Fatal("reset connection gave no error")
		}
	}
	if got := chain.Breakers().State(strings.TrimPrefix(srv.URL, "http://")); got != resilience.Open {
		t.Fatalf("breaker %v after two resets", got)
	}
}

func TestFallbackResponse(t *testing.T) {
	srv := newFaultServer(t)
	srv.set(failing)
	c, _ := resilience.NewChain(resilience.WithLogger(quiet()))
	tr, err := httpx.NewTransport(c, httpx.WithFallback(httpx.StaticResponse(200, http.Header{"X-Fallback": {"1"}}, []byte(`{"eta":45}`))))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != `{"eta":45}` || resp.Header.Get("X-Fallback") != "1" {
		t.Fatalf("%d %q %v", resp.StatusCode, b, resp.Header)
	}
}

func TestTransportOptionsAreValidated(t *testing.T) {
	c, _ := resilience.NewChain()
	for name, opts := range map[string][]httpx.TransportOption{
		"nil base":          {httpx.WithBase(nil)},
		"nil key":           {httpx.WithKey(nil)},
		"nil idempotent":    {httpx.WithIdempotent(nil)},
		"nil failure":       {httpx.WithFailureStatus(nil)},
		"nil fallback":      {httpx.WithFallback(nil)},
		"negative body cap": {httpx.WithMaxErrorBody(-1)},
		"nil option":        {nil},
	} {
		if _, err := httpx.NewTransport(c, opts...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := httpx.NewTransport(nil); err == nil {
		t.Error("nil chain accepted")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Thu, 01 Jan 2026 00:00:10 GMT": 10 * time.Second,
		"Wed, 31 Dec 2025 00:00:10 GMT": 0,
	} {
		if got := httpx.ParseRetryAfter(v, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}
