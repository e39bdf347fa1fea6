package relaytest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/observe/tracing"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// CheckTraced checks that a message written into the outbox inside a
// span reaches its handler in the same trace, whatever the relay's
// source (src; nil for the table poller): a relay of relayDB publishes
// through a traced producer to an in-memory broker, a request span
// writes one message through writerDB's outbox with tracing.Outbox, and
// the handler's span must descend from it: request → create → send →
// process.
func CheckTraced(t testing.TB, relayDB, writerDB *sql.DB, d *sqldb.Dialect, src outbox.Source, opts ...outbox.RelayOption) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := tracing.New(tracing.WithTracerProvider(tp))
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	got := make(chan struct{}, 1)
	sub, err := b.Subscribe(context.Background(), "traced", []string{"orders"}, broker.HandlerFunc(func(context.Context, *message.Message) error {
		select {
		case got <- struct{}{}:
		default:
		}
		return nil
	}), tr.SubscribeOption(), broker.WithLogger(Quiet()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close(context.Background()) })
	base := []outbox.RelayOption{outbox.WithLeaseTTL(time.Second), outbox.WithLogger(Quiet())}
	if src != nil {
		base = append(base, outbox.WithSource(src))
	}
	relay, err := outbox.NewRelay(relayDB, d, tr.Producer(b), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := relay.Setup(context.Background()); err != nil {
		t.Fatal(err)
	}
	Run(t, relay)

	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	tx, err := writerDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Outbox(outbox.NewWriter(d).Producer(tx)).Send(ctx, "orders", message.NewBuilder([]byte("o-1")).WithPartitionKey("o-1").Build()); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	span.End()
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the relay published nothing within 30s")
	}
	// The send span ends when the relay's Send returns, which can be
	// after the handler's span ended: wait for every span of the chain.
	chain := []string{"request", "create orders", "send orders", "process orders"}
	byName := map[string]sdktrace.ReadOnlySpan{}
	Eventually(t, "the chain's spans", func() bool {
		for _, s := range rec.Ended() {
			byName[s.Name()] = s
		}
		for _, name := range chain {
			if byName[name] == nil {
				return false
			}
		}
		return true
	})
	for i := 1; i < len(chain); i++ {
		parent, child := byName[chain[i-1]], byName[chain[i]]
		if parent == nil || child == nil {
			t.Fatalf("spans %v, want %v", byName, chain)
		}
		if child.Parent().SpanID() != parent.SpanContext().SpanID() || child.SpanContext().TraceID() != span.SpanContext().TraceID() {
			t.Errorf("span %q is not a child of %q in the request's trace", chain[i], chain[i-1])
		}
	}
}
