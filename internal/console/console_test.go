package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/courier-go/courier/broker"
	bmemory "github.com/courier-go/courier/broker/memory"
	brokermetrics "github.com/courier-go/courier/broker/metrics"
	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/memory"
	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/outbox"
	relaymetrics "github.com/courier-go/courier/outbox/metrics"
	"github.com/courier-go/courier/resilience"
	resiliencemetrics "github.com/courier-go/courier/resilience/metrics"
	"github.com/courier-go/courier/sqldb"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serveMetrics serves reg's metrics on /metrics of a loopback server and
// returns its address.
func serveMetrics(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func register(t *testing.T, reg discovery.Registry, inst discovery.Instance) discovery.Lease {
	t.Helper()
	l, err := reg.Register(ctxFor(t), inst)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Deregister(context.Background()) })
	return l
}

// TestStateFromRegistryAndMetrics runs the observers Courier's services
// use (consumers, breakers, a relay publishing from SQLite), serves their
// metrics as the services do, registers the instances with the metrics
// address in their metadata, and checks what the console makes of two
// scrapes: health, breaker state and rejection rate, the relay's role and
// throughput, consumer rates and dead letters with their replay command.
func TestStateFromRegistryAndMetrics(t *testing.T) {
	ctx := ctxFor(t)
	kitchen := prometheus.NewRegistry()
	consumers, err := brokermetrics.NewObserver(kitchen)
	if err != nil {
		t.Fatal(err)
	}
	order := prometheus.NewRegistry()
	breakers, err := resiliencemetrics.NewObserver(order)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := relaymetrics.NewRelay(order, "order-service", relaymetrics.SourcePoll)
	if err != nil {
		t.Fatal(err)
	}
	db := testdb.SQLite(t)
	b, err := bmemory.New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	got := relaytest.Collect(t, b, "orders")
	relay, err := outbox.NewRelay(db.DB, sqldb.SQLite, b, outbox.WithName("order-service"), outbox.WithObserver(rm),
		outbox.WithLogger(relaytest.Quiet()), outbox.WithPollInterval(10*time.Millisecond), outbox.WithLeaseTTL(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rm.Track(relay)
	relaytest.Run(t, relay)

	reg := memory.New()
	defer reg.Close()
	register(t, reg, discovery.Instance{Service: "kitchen-service", ID: "k1", Address: serveMetrics(t, kitchen),
		Metadata: map[string]string{discovery.MetadataMetrics: "/metrics"}})
	orderAddr := serveMetrics(t, order)
	register(t, reg, discovery.Instance{Service: "order-service", ID: "o1", Address: "127.0.0.1:1", Version: "2.0.0",
		Metadata: map[string]string{discovery.MetadataMetrics: "http://" + orderAddr + "/metrics"}})
	sick := register(t, reg, discovery.Instance{Service: "accounting-service", ID: "a1", Address: "127.0.0.1:2"})
	inst := sick.Instance()
	inst.Unhealthy = true
	if err := sick.Update(ctx, inst); err != nil {
		t.Fatal(err)
	}

	c, err := New(Config{Registry: reg, Interval: time.Second, ReplayBroker: "nats://ops:s3cret@nats:4222"})
	if err != nil {
		t.Fatal(err)
	}
	info := broker.DeliveryInfo{SubscriberID: "kitchen-service", Channel: "kitchen.commands", Attempt: 1}
	for range 3 {
		consumers.Handled(ctx, info, "m", time.Millisecond, nil, false)
	}
	consumers.DeadLettered(ctx, info, "m-bad", broker.EnvelopeOriginal)
	breakers.BreakerStateChanged("consumer-service", "consumer-service", resilience.Closed, resilience.Open)
	c.Refresh(ctx)
	first := c.State()
	if n := len(first.Consumers); n != 1 || first.Consumers[0].HandledRate != nil {
		t.Fatalf("first scrape: consumers %+v; want one, without a rate", first.Consumers)
	}

	// Between the scrapes: 10 more handled, 4 rejections, 2 more dead
	// letters, and the rows of 4 transactions (5 each) the relay
	// publishes.
	for range 10 {
		consumers.Handled(ctx, info, "m", time.Millisecond, nil, false)
	}
	for range 4 {
		breakers.Rejected("consumer-service", "consumer-service", resilience.ErrBreakerOpen)
	}
	other := broker.DeliveryInfo{SubscriberID: "kitchen-service", Channel: "restaurant.events", Attempt: 20}
	consumers.DeadLettered(ctx, other, "m-worse", broker.EnvelopeOriginal)
	consumers.DeadLettered(ctx, other, "m-worst", broker.EnvelopeBounded)
	txs := relaytest.WriteTransactions(t, db.DB, outbox.NewWriter(sqldb.SQLite), 4) // one rolled back
	txs.Check(t, got)
	relaytest.Eventually(t, "the relay to count what it published", func() bool {
		s, err := fetch(ctx, http.DefaultClient, "http://"+orderAddr+"/metrics", nil)
		return err == nil && s.values[seriesKey("courier_relay_published_total", map[string]string{"relay": "order-service", "source": "poll"})] == 15
	})
	time.Sleep(50 * time.Millisecond) // a measurable interval
	c.Refresh(ctx)
	st := c.State()

	if len(st.Services) != 3 {
		t.Fatalf("services %+v; want accounting, kitchen and order", st.Services)
	}
	health := map[string]string{}
	for _, s := range st.Services {
		for _, i := range s.Instances {
			health[s.Name+"/"+i.ID] = i.Health
		}
	}
	if health["accounting-service/a1"] != "unhealthy" || health["kitchen-service/k1"] != "healthy" || health["order-service/o1"] != "healthy" {
		t.Errorf("health %v", health)
	}
	if len(st.Endpoints) != 2 || !st.Endpoints[0].Up || !st.Endpoints[1].Up {
		t.Errorf("endpoints %+v; want kitchen's and order's, up", st.Endpoints)
	}

	if len(st.Breakers) != 1 {
		t.Fatalf("breakers %+v", st.Breakers)
	}
	br := st.Breakers[0]
	if br.Endpoint != "order-service/o1" || br.Chain != "consumer-service" || br.State != "open" || br.Rejections != 4 ||
		br.RejectionRate == nil || *br.RejectionRate <= 0 {
		t.Errorf("breaker %+v (rate %v); want open, 4 rejections at a positive rate", br, deref(br.RejectionRate))
	}

	if len(st.Relays) != 1 {
		t.Fatalf("relays %+v", st.Relays)
	}
	rl := st.Relays[0]
	if rl.Name != "order-service" || rl.Role != "leader" || rl.Source != "poll" || rl.Published != 15 || rl.PublishRate == nil ||
		*rl.PublishRate <= 0 || rl.LagSeconds == nil {
		t.Errorf("relay %+v (rate %v); want the leader, 15 published at a positive rate, a lag", rl, deref(rl.PublishRate))
	}

	var commands *Consumer
	for i, cs := range st.Consumers {
		if cs.Channel == "kitchen.commands" {
			commands = &st.Consumers[i]
		}
	}
	if commands == nil || commands.Handled != 13 || commands.HandledRate == nil || *commands.HandledRate <= 0 ||
		commands.FailedRate == nil || *commands.FailedRate != 0 {
		t.Fatalf("consumers %+v; want kitchen.commands with 13 handled at a positive rate, none failed", st.Consumers)
	}
	if len(st.DeadLetters) != 1 {
		t.Fatalf("dead letters %+v", st.DeadLetters)
	}
	dl := st.DeadLetters[0]
	want := "courier deadletter replay -broker nats://ops:xxxxx@nats:4222 -subscriber kitchen-service"
	if dl.SubscriberID != "kitchen-service" || dl.Count != 3 || strings.Join(dl.Channels, ",") != "kitchen.commands,restaurant.events" ||
		dl.Replay != want {
		t.Errorf("dead letters %+v; want 3 of kitchen-service over two channels, replayed with %s", dl, want)
	}
	if strings.Contains(dl.Replay, "s3cret") {
		t.Errorf("the replay command shows the broker's password: %s", dl.Replay)
	}
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

// TestEndpointsDownAndGone checks that an endpoint that fails is shown
// down with the reason, that the others are still read, and that the
// registry's failure keeps its last known services.
func TestEndpointsDownAndGone(t *testing.T) {
	ctx := ctxFor(t)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer failing.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "courier_relay_leader{relay=\"x\" 1\n")
	}))
	defer garbage.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	reg := memory.New()
	register(t, reg, discovery.Instance{Service: "kitchen-service", ID: "k1", Address: closed,
		Metadata: map[string]string{discovery.MetadataMetrics: "/metrics"}})
	c, err := New(Config{Registry: reg, Targets: []Target{{Name: "relay-a", URL: failing.URL + "/metrics"}, {Name: "relay-b", URL: garbage.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	c.Refresh(ctx)
	st := c.State()
	if len(st.Endpoints) != 3 {
		t.Fatalf("endpoints %+v", st.Endpoints)
	}
	for _, e := range st.Endpoints {
		if e.Up || e.Error == "" {
			t.Errorf("endpoint %+v: want down with a reason", e)
		}
	}
	if !strings.Contains(st.Endpoints[0].Error, "500") {
		t.Errorf("relay-a: %q; want the status", st.Endpoints[0].Error)
	}
	reg.Close() // the registry fails from now on
	c.Refresh(ctx)
	st = c.State()
	if st.RegistryError == "" || len(st.Services) != 1 || st.Services[0].Name != "kitchen-service" {
		t.Errorf("after the registry failed: error %q, services %+v; want the error and the last known services", st.RegistryError, st.Services)
	}
}

// TestScrapesOverTLSWithToken checks that the console scrapes an endpoint
// that wants TLS and a bearer token with the client and credentials it is
// given, and is refused without them.
func TestScrapesOverTLSWithToken(t *testing.T) {
	ctx := ctxFor(t)
	reg := prometheus.NewRegistry()
	obs, err := resiliencemetrics.NewObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	obs.BreakerStateChanged("menus", "restaurant-service", resilience.Open, resilience.HalfOpen)
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		metrics.ServeHTTP(w, r)
	}))
	defer srv.Close()
	targets := []Target{{Name: "relay", URL: srv.URL + "/metrics"}}

	c, err := New(Config{Targets: targets, Client: srv.Client(), Auth: func(r *http.Request) { r.Header.Set("Authorization", "Bearer t0ken") }})
	if err != nil {
		t.Fatal(err)
	}
	c.Refresh(ctx)
	if st := c.State(); len(st.Breakers) != 1 || st.Breakers[0].State != "half-open" {
		t.Errorf("with TLS and the token: breakers %+v, endpoints %+v; want one half-open", st.Breakers, st.Endpoints)
	}
	for name, cfg := range map[string]Config{
		"no token":     {Targets: targets, Client: srv.Client()},
		"no server CA": {Targets: targets, Auth: func(r *http.Request) { r.Header.Set("Authorization", "Bearer t0ken") }},
	} {
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.Refresh(ctx)
		if st := c.State(); st.Endpoints[0].Up || len(st.Breakers) != 0 {
			t.Errorf("%s: endpoint %+v, breakers %+v; want refused", name, st.Endpoints[0], st.Breakers)
		}
	}
}

// TestPage checks that the page shows the state, escapes what the
// endpoints report, and that /api/state serves the same state as JSON.
func TestPage(t *testing.T) {
	ctx := ctxFor(t)
	reg := prometheus.NewRegistry()
	obs, err := brokermetrics.NewObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	obs.DeadLettered(ctx, broker.DeliveryInfo{SubscriberID: "<script>alert(1)</script>", Channel: "orders"}, "m", broker.EnvelopeOriginal)
	c, err := New(Config{Targets: []Target{{Name: "svc", URL: "http://" + serveMetrics(t, reg) + "/metrics"}}})
	if err != nil {
		t.Fatal(err)
	}
	c.Refresh(ctx)
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(body)
	if strings.Contains(page, "<script>alert") || !strings.Contains(page, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the subscriber id is not escaped:\n%s", page)
	}
	if !strings.Contains(page, "courier deadletter replay -broker BROKER_URL -subscriber &#39;&lt;script&gt;") {
		t.Errorf("no replay command with the placeholder and the quoted subscriber id:\n%s", page)
	}
	resp, err = http.Get(srv.URL + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if len(st.DeadLetters) != 1 || st.DeadLetters[0].Count != 1 || st.DeadLetters[0].SubscriberID != "<script>alert(1)</script>" {
		t.Errorf("/api/state dead letters %+v", st.DeadLetters)
	}
	if resp, err := http.Get(srv.URL + "/nothing"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing: %v, %v; want 404", resp.Status, err)
	}
}

func TestConfigChecked(t *testing.T) {
	for name, cfg := range map[string]Config{
		"nothing":     {},
		"bad URL":     {Targets: []Target{{Name: "a", URL: "ftp://x/metrics"}}},
		"no host":     {Targets: []Target{{Name: "a", URL: "http:///metrics"}}},
		"twice":       {Targets: []Target{{Name: "a", URL: "http://x/metrics"}, {Name: "a", URL: "http://y/metrics"}}},
		"bad service": {Registry: memory.New(), Services: []string{"a b"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

// TestRegistryThatCannotList checks that a registry without a list of
// its services (DNS) is read for the services named, and otherwise says
// to name them.
func TestRegistryThatCannotList(t *testing.T) {
	ctx := ctxFor(t)
	reg := memory.New()
	register(t, reg, discovery.Instance{Service: "kitchen-service", ID: "k1", Address: "127.0.0.1:1"})
	var plain struct{ discovery.Registry } // hides Services
	plain.Registry = reg
	c, err := New(Config{Registry: plain})
	if err != nil {
		t.Fatal(err)
	}
	c.Refresh(ctx)
	if st := c.State(); !strings.Contains(st.RegistryError, "-services") {
		t.Errorf("registry error %q; want it to say to name the services", st.RegistryError)
	}
	if _, err := c.readRegistry(ctx); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("readRegistry: %v; want errors.ErrUnsupported", err)
	}
	c, err = New(Config{Registry: plain, Services: []string{"kitchen-service", "order-service"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Refresh(ctx)
	st := c.State()
	if st.RegistryError != "" || len(st.Services) != 2 || len(st.Services[0].Instances) != 1 || len(st.Services[1].Instances) != 0 {
		t.Errorf("services %+v, error %q; want kitchen with its instance and order with none", st.Services, st.RegistryError)
	}
}
