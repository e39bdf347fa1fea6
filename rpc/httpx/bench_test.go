package httpx_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/courier-go/courier/resilience"
	"github.com/courier-go/courier/rpc/httpx"
)

// benchLoopback measures sequential GETs to a loopback server through rt and
// reports the median round trip as p50-ns.
func benchLoopback(b *testing.B, rt http.RoundTripper) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	client := &http.Client{Transport: rt}
	req, _ := http.NewRequest("GET", srv.URL, nil)
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
}

func benchChain(b *testing.B) *resilience.Chain {
	c, err := resilience.NewChain(resilience.WithLogger(quiet()), resilience.WithTimeout(5*time.Second),
		resilience.WithBulkhead(100), resilience.WithCircuitBreaker(resilience.FailureIf(httpx.Failure)),
		resilience.WithRetry(resilience.RetryIf(httpx.Retryable)))
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkLoopbackBare is a plain net/http client on loopback.
func BenchmarkLoopbackBare(b *testing.B) {
	benchLoopback(b, &http.Transport{})
}

// BenchmarkLoopbackPolicies is the same client through the whole chain:
// fallback, retry, breaker, bulkhead and timeout.
func BenchmarkLoopbackPolicies(b *testing.B) {
	tr, err := httpx.NewTransport(benchChain(b), httpx.WithBase(&http.Transport{}),
		httpx.WithFallback(httpx.StaticResponse(200, nil, []byte("fallback"))))
	if err != nil {
		b.Fatal(err)
	}
	benchLoopback(b, tr)
}

// BenchmarkRoundTripPolicies is the cost of the whole chain around a
// RoundTrip whose base answers at once, without a network: what the
// policies add to each call.
func BenchmarkRoundTripPolicies(b *testing.B) {
	resp := &http.Response{StatusCode: http.StatusOK}
	base := roundTripFunc(func(*http.Request) (*http.Response, error) {
		resp.Body = http.NoBody // reused: unwrap the previous call's body
		return resp, nil
	})
	tr, err := httpx.NewTransport(benchChain(b), httpx.WithBase(base),
		httpx.WithFallback(httpx.StaticResponse(200, nil, []byte("fallback"))))
	if err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://orders-1:8080/orders/1", nil)
	b.ReportAllocs()
	for b.Loop() {
		r, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		r.Body.Close()
	}
}

// BenchmarkRoundTripRejectedOpenBreaker is a RoundTrip refused by an open
// breaker: no network call.
func BenchmarkRoundTripRejectedOpenBreaker(b *testing.B) {
	c := benchChain(b)
	tr, _ := httpx.NewTransport(c)
	req, _ := http.NewRequest("GET", "http://orders-1:8080/orders/1", nil)
	c.Breakers().Get("orders-1:8080").Open()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.RoundTrip(req); err != resilience.ErrBreakerOpen {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTripRejectedFullBulkhead is a RoundTrip refused by a full
// bulkhead.
func BenchmarkRoundTripRejectedFullBulkhead(b *testing.B) {
	c, _ := resilience.NewChain(resilience.WithLogger(quiet()), resilience.WithBulkhead(1), resilience.WithTimeout(time.Second))
	tr, _ := httpx.NewTransport(c)
	req, _ := http.NewRequest("GET", "http://orders-1:8080/orders/1", nil)
	_ = c.Bulkhead().Acquire()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tr.RoundTrip(req); err != resilience.ErrBulkheadFull {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoopbackOverhead alternates a bare call and a call through the
// whole chain to the same loopback server, so that both see the same
// machine load, and reports both medians and the added p50 latency in
// percent.
func BenchmarkLoopbackOverhead(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	tr, err := httpx.NewTransport(benchChain(b), httpx.WithBase(&http.Transport{}),
		httpx.WithFallback(httpx.StaticResponse(200, nil, []byte("fallback"))))
	if err != nil {
		b.Fatal(err)
	}
	clients := [2]*http.Client{{Transport: &http.Transport{}}, {Transport: tr}}
	req, _ := http.NewRequest("GET", srv.URL, nil)
	var lat [2][]time.Duration
	i := 0
	for b.Loop() {
		for k := range 2 {
			which := (i + k) % 2 // alternate which goes first
			start := time.Now()
			resp, err := clients[which].Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat[which] = append(lat[which], time.Since(start))
		}
		i++
	}
	reportOverhead(b, lat)
}

func reportOverhead(b *testing.B, lat [2][]time.Duration) {
	var p50 [2]float64
	for k := range 2 {
		slices.Sort(lat[k])
		p50[k] = float64(lat[k][len(lat[k])/2].Nanoseconds())
	}
	b.ReportMetric(p50[0], "p50-bare-ns")
	b.ReportMetric(p50[1], "p50-policies-ns")
	b.ReportMetric(100*(p50[1]-p50[0])/p50[0], "p50-added-%")
}
