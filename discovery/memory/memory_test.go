package memory_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/httplb"
	"github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/discovery/registrytest"
)

func TestConformance(t *testing.T) {
	registrytest.Run(t, registrytest.Config{New: func(t *testing.T) discovery.Registry {
		r := memory.New()
		t.Cleanup(func() { r.Close() })
		return r
	}, TTL: time.Second})
}

// BenchmarkFailover measures, with the default TTL, how long clients keep
// routing to an instance after it stops heartbeating and listening (the
// in-process stand-in for kill -9).
func BenchmarkFailover(b *testing.B) {
	for range b.N {
		reg := memory.New()
		var leases []*memory.Lease
		var servers []*httptest.Server
		for _, id := range []string{"a", "b"} {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, id) }))
			servers = append(servers, srv)
			l, err := reg.Register(context.Background(), discovery.Instance{Service: "orders", ID: id, Address: strings.TrimPrefix(srv.URL, "http://")})
			if err != nil {
				b.Fatal(err)
			}
			leases = append(leases, l.(*memory.Lease))
		}
		r, _ := discovery.NewResolver(reg)
		tr, _ := httplb.New(r)
		c := &http.Client{Transport: tr}
		c.Get("http://orders/")
		killed := time.Now()
		leases[1].Abandon()
		servers[1].Close()
		var last time.Time
		for quiet := time.Now(); time.Since(quiet) < time.Second; time.Sleep(time.Millisecond) {
			inst, err := r.Instances(context.Background(), "orders")
			if err == nil && len(inst) == 2 {
				last, quiet = time.Now(), time.Now()
			}
			if time.Since(killed) > 4*discovery.DefaultTTL {
				b.Fatal("killed instance never left")
			}
		}
		b.ReportMetric(float64(last.Sub(killed).Milliseconds()), "failover-ms")
		r.Close()
		reg.Close()
		servers[0].Close()
	}
}
