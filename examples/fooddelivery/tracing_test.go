package fooddelivery_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/courier-go/courier/examples/fooddelivery"
)

// recorded is the food-delivery system's spans, recorded in memory: one
// TracerProvider per service, each with its service.name, all into one
// recorder.
type recorded struct {
	rec       *tracetest.SpanRecorder
	mu        sync.Mutex
	providers map[string]*sdktrace.TracerProvider
}

func newRecorded() *recorded {
	return &recorded{rec: tracetest.NewSpanRecorder(), providers: map[string]*sdktrace.TracerProvider{}}
}

func (r *recorded) provider(service string) trace.TracerProvider {
	r.mu.Lock()
	defer r.mu.Unlock()
	if tp := r.providers[service]; tp != nil {
		return tp
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.rec),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))))
	r.providers[service] = tp
	return tp
}

// span is a recorded span as the test reads it.
type span struct {
	service, name string
	kind          trace.SpanKind
	id, parent    trace.SpanID
	trace         trace.TraceID
	attrs         []attribute.KeyValue
}

func (s span) String() string {
	return fmt.Sprintf("%s %q (%s)", s.service, s.name, s.kind)
}

func (r *recorded) spans() []span {
	var out []span
	for _, s := range r.rec.Ended() {
		svc, _ := s.Resource().Set().Value(semconv.ServiceNameKey)
		out = append(out, span{service: svc.AsString(), name: s.Name(), kind: s.SpanKind(),
			id: s.SpanContext().SpanID(), parent: s.Parent().SpanID(), trace: s.SpanContext().TraceID(), attrs: s.Attributes()})
	}
	return out
}

// tree lists the trace's spans depth first, each with its service, its
// name and kind, and its parent's service and name.
func tree(spans []span) string {
	var b strings.Builder
	byID := map[trace.SpanID]span{}
	for _, s := range spans {
		byID[s.id] = s
	}
	var walk func(parent trace.SpanID, root bool)
	walk = func(parent trace.SpanID, root bool) {
		for _, s := range spans {
			p, hasParent := byID[s.parent]
			if root && hasParent || !root && s.parent != parent {
				continue
			}
			from := "(root)"
			if hasParent {
				from = p.service + ": " + p.name
			}
			fmt.Fprintf(&b, "%-20s %-56s ← %s\n", s.service, s.name+" ("+s.kind.String()+")", from)
			walk(s.id, false)
		}
	}
	walk(trace.SpanID{}, true)
	return b.String()
}

// hop is a span the order's trace must hold n times at least: a span of
// service, of kind, named name, whose parent is a span of parentService
// named parentName (no parent: the trace's root).
type hop struct {
	service                   string
	kind                      trace.SpanKind
	name                      string
	parentService, parentName string
	n                         int
}

// orderHops are the hops of one approved order, placed with version 1 of
// the API. Each asynchronous hop is three spans: the outbox write
// ("create", under the code that wrote the row), the relay's "send" under
// it (the relay continues the trace the row carries) and the handling
// service's "process" under the send.
func orderHops() []hop {
	const (
		sc, ord, con, kit, acc, not, res = fooddelivery.ScenarioClient, fooddelivery.OrderService, fooddelivery.ConsumerService,
			fooddelivery.KitchenService, fooddelivery.AccountingService, fooddelivery.NotificationService, fooddelivery.RestaurantService
		getMenu = "fooddelivery.restaurant.v1.Restaurants/GetMenu"
		post    = "POST /v1/orders"
		client  = trace.SpanKindClient
		server  = trace.SpanKindServer
		prod    = trace.SpanKindProducer
		cons    = trace.SpanKindConsumer
	)
	replies, events := fooddelivery.OrderRepliesV2, fooddelivery.OrderAggregate
	hops := []hop{
		// REST: the client's POST, served by the order service, which
		// calls the consumer service over REST and the restaurant
		// service over gRPC.
		{sc, client, "HTTP POST", "", "", 1},
		{ord, server, post, sc, "HTTP POST", 1},
		{ord, client, "HTTP GET", ord, post, 1},
		{con, server, "GET /consumers/{id}", ord, "HTTP GET", 1},
		{ord, client, getMenu, ord, post, 1},
		{res, server, getMenu, ord, getMenu, 1},
		// The request's outbox writes: OrderCreated and VerifyConsumer.
		{ord, prod, "create " + events, ord, post, 1},
		{ord, prod, "create " + fooddelivery.ConsumerCommands, ord, post, 1},
	}
	// Every message of the saga: written by the first service into its
	// outbox, sent by its relay, processed by the second.
	for _, m := range []struct {
		from, channel, to string
		n                 int
	}{
		{ord, events, not, 2}, // OrderCreated, OrderApproved
		{ord, fooddelivery.ConsumerCommands, con, 1},
		{con, replies, ord, 1},
		{ord, fooddelivery.KitchenCommands, kit, 2}, // CreateTicket, ApproveTicket
		{kit, replies, ord, 2},
		{ord, fooddelivery.AccountingCommands, acc, 1},
		{acc, replies, ord, 1},
		{ord, fooddelivery.NotificationCommands, not, 1},
	} {
		hops = append(hops,
			hop{m.from, prod, "send " + m.channel, m.from, "create " + m.channel, m.n},
			hop{m.to, cons, "process " + m.channel, m.from, "send " + m.channel, m.n})
	}
	// Each handler's outbox writes are under its delivery's span.
	for _, h := range []struct {
		service, in, out string
		n                int
	}{
		{con, fooddelivery.ConsumerCommands, replies, 1},
		{kit, fooddelivery.KitchenCommands, replies, 2},
		{acc, fooddelivery.AccountingCommands, replies, 1},
		{ord, replies, fooddelivery.KitchenCommands, 2},
		{ord, replies, fooddelivery.AccountingCommands, 1},
		{ord, replies, fooddelivery.NotificationCommands, 1},
		{ord, replies, events, 1},
	} {
		hops = append(hops, hop{h.service, prod, "create " + h.out, h.service, "process " + h.in, h.n})
	}
	return hops
}

// orderTrace returns the spans of the trace the client's POST started,
// and what is wrong with it: a span that is not there, a span whose
// parent is not in the trace, a message of another order.
func orderTrace(all []span, orderID string) ([]span, []string) {
	var posts []span
	for _, s := range all {
		if s.service == fooddelivery.ScenarioClient && s.kind == trace.SpanKindClient && s.name == "HTTP POST" {
			posts = append(posts, s)
		}
	}
	if len(posts) != 1 {
		return nil, []string{fmt.Sprintf("%d client POST spans, want 1", len(posts))}
	}
	var spans []span
	byID := map[trace.SpanID]span{}
	for _, s := range all {
		if s.trace == posts[0].trace {
			spans = append(spans, s)
			byID[s.id] = s
		}
	}
	var problems []string
	for _, s := range spans {
		if p, ok := byID[s.parent]; !ok && s.id != posts[0].id {
			problems = append(problems, fmt.Sprintf("%s: parent %s is not in the trace", s, s.parent))
		} else if ok && s.id == posts[0].id {
			problems = append(problems, fmt.Sprintf("the POST has a parent, %s", p))
		}
		if s.kind == trace.SpanKindConsumer || s.kind == trace.SpanKindProducer {
			if k := attr(s, "messaging.courier.partition_key"); k != orderID {
				problems = append(problems, fmt.Sprintf("%s: partition key %q, want %q", s, k, orderID))
			}
		}
	}
	for _, h := range orderHops() {
		n := 0
		for _, s := range spans {
			p, hasParent := byID[s.parent]
			if s.service == h.service && s.kind == h.kind && s.name == h.name &&
				(h.parentService == "" && !hasParent || hasParent && p.service == h.parentService && p.name == h.parentName) {
				n++
			}
		}
		if n < h.n {
			problems = append(problems, fmt.Sprintf("%d of %s %q (%s) under %s %q, want %d", n, h.service, h.name, h.kind, h.parentService, h.parentName, h.n))
		}
	}
	return spans, problems
}

func attr(s span, key string) string {
	for _, a := range s.attrs {
		if string(a.Key) == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// TestOneOrderIsOneTrace places one order with every service traced and
// checks that it makes a single trace: the client's POST, the order
// service's REST and gRPC calls, every outbox write, relay send and
// handler of the saga, each span under the one that caused it. A hop that
// drops the context starts a trace of its own, and its spans go missing
// from this one.
func TestOneOrderIsOneTrace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env, closeEnv, err := fooddelivery.EmbeddedEnv(ctx, t.TempDir(), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer closeEnv(context.Background())
	rec := newRecorded()
	env.TracerProvider = rec.provider
	sys, err := fooddelivery.Start(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Stop(context.Background())
	client, err := fooddelivery.NewClient(env.Registry, fooddelivery.WithClientTracing(rec.provider(fooddelivery.ScenarioClient)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	req := fooddelivery.CreateOrderRequest{ID: "o-traced", ConsumerID: "c-ada", RestaurantID: "r-ajanta", Items: []fooddelivery.LineItem{{MenuItem: "curry", Quantity: 1}}}
	if _, err := client.CreateOrder(ctx, req); err != nil {
		t.Fatal(err)
	}
	if o, err := client.AwaitFinal(ctx, req.ID); err != nil || o.State != fooddelivery.Approved {
		t.Fatalf("order %s: %+v, %v; want %s", req.ID, o, err, fooddelivery.Approved)
	}
	// The last spans (the notification, the relays' sends) end shortly
	// after the order is approved.
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans, problems := orderTrace(rec.spans(), req.ID)
		if len(problems) == 0 {
			t.Logf("the trace of order %s:\n%s", req.ID, tree(spans))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trace of order %s:\n%s\n%s", req.ID, strings.Join(problems, "\n"), tree(spans))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
