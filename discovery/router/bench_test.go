package router_test

import (
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/discovery/router"
)

// BenchmarkRouterOverhead alternates direct calls to an instance and calls
// through the router on loopback, and reports both medians and their
// difference (the router's added latency).
func BenchmarkRouterOverhead(b *testing.B) {
	reg := memory.New()
	defer reg.Close()
	srv := restInstance(b, reg, "orders", "o1")
	addr := serve(b, newRouter(b, reg, []router.Route{{Prefix: "/orders/", Service: "orders"}}))
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	call := func(url string) time.Duration {
		start := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start)
	}
	direct, routed := srv.URL+"/orders/1", "http://"+addr+"/orders/1"
	for range 100 { // warm up connections
		call(direct)
		call(routed)
	}
	var d, r []time.Duration
	b.ResetTimer()
	for range b.N {
		d = append(d, call(direct))
		r = append(r, call(routed))
	}
	b.StopTimer()
	p50 := func(s []time.Duration) float64 {
		slices.Sort(s)
		return float64(s[len(s)/2].Microseconds())
	}
	b.ReportMetric(p50(d), "direct-p50-µs")
	b.ReportMetric(p50(r), "routed-p50-µs")
	b.ReportMetric(p50(r)-p50(d), "overhead-p50-µs")
}
