package fooddelivery

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/courier-go/courier/broker"
	brokermetrics "github.com/courier-go/courier/broker/metrics"
	"github.com/courier-go/courier/commands"
	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/events"
	"github.com/courier-go/courier/inbox"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/observe/tracing"
	"github.com/courier-go/courier/outbox"
	relaymetrics "github.com/courier-go/courier/outbox/metrics"
	resiliencemetrics "github.com/courier-go/courier/resilience/metrics"
	"github.com/courier-go/courier/sqldb"
)

// Env is what a service needs from its surroundings: its database, a
// broker connection, the service registry and the trace. The same services
// run in one process (System) or one per process (RunService).
type Env struct {
	// OpenDB opens the service's own database (a SQLite file, or a
	// PostgreSQL schema or MySQL database of its own).
	OpenDB func(ctx context.Context, service string) (*sql.DB, *sqldb.Dialect, error)
	// OpenBroker opens a broker connection for the service.
	OpenBroker func(ctx context.Context, service string) (broker.Broker, error)
	// Registry is where REST and gRPC servers register and clients look
	// them up.
	Registry discovery.Registry
	// ExternalRelay leaves the outboxes to `courier relay` processes
	// instead of running a polling relay inside each service.
	ExternalRelay bool
	// Trace receives one line per message handled and per call made.
	Trace *Trace
	// Logger receives the services' logs (default: discarded).
	Logger *slog.Logger
	// TracerProvider, when set, gives the OpenTelemetry provider of each
	// service (named as in Services, or ScenarioClient for the scenario's
	// client): every hop of an order then joins its trace, the REST and
	// gRPC servers and clients, the outbox writes, the relays' sends and
	// the handlers. Nil, or a provider that records nothing, leaves the
	// services untraced at no cost.
	TracerProvider func(service string) trace.TracerProvider
}

func (e *Env) validate() error {
	switch {
	case e.OpenDB == nil:
		return errors.New("fooddelivery: Env.OpenDB is nil")
	case e.OpenBroker == nil:
		return errors.New("fooddelivery: Env.OpenBroker is nil")
	case e.Registry == nil:
		return errors.New("fooddelivery: Env.Registry is nil")
	}
	if e.Trace == nil {
		e.Trace = NewTrace(io.Discard)
	}
	if e.Logger == nil {
		e.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return nil
}

// Trace prints a readable line per message and call, with the time since
// the trace started. It is safe for concurrent use.
type Trace struct {
	mu     sync.Mutex
	out    io.Writer
	start  time.Time
	muted  bool
	hidden int
}

// NewTrace returns a Trace writing to out.
func NewTrace(out io.Writer) *Trace { return &Trace{out: out, start: time.Now()} }

// Printf writes one line for service.
func (t *Trace) Printf(service, format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.muted && service != "scenario" && !strings.HasPrefix(format, "KILLED") && !strings.HasPrefix(format, "restarted") {
		t.hidden++
		return
	}
	ms := float64(time.Since(t.start).Microseconds()) / 1000
	fmt.Fprintf(t.out, "%8.1fms  %-13s %s\n", ms, strings.Replace(service, "-service", "", 1), fmt.Sprintf(format, args...))
}

// mute hides the services' lines (not the scenario's, nor kills and
// restarts) while on, and returns how many it hid since the last call.
func (t *Trace) mute(on bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.muted = on
	n := t.hidden
	t.hidden = 0
	return n
}

// Elapsed returns the time since the trace started.
func (t *Trace) Elapsed() time.Duration { return time.Since(t.start) }

// node is the running infrastructure of one service: its database with
// the outbox and inbox tables, its broker connection, its outbox relay and
// its subscriptions.
type node struct {
	name  string
	label string // in the trace: the name, or the name and the release
	env   *Env
	db    *sql.DB
	d     *sqldb.Dialect
	b     broker.Broker
	w     *outbox.Writer
	ib    *inbox.Inbox
	trace *Trace
	// tr traces the node's messages and calls; nil when tracing is off.
	tr *tracing.Tracing
	// api is the service's REST or gRPC endpoint, if it has one.
	api *endpoint
	// web serves the service's health, its API documents, its metrics
	// and its REST API.
	web *endpoint
	// metrics gathers the node's metrics: its subscriptions' (consumers),
	// its outbox relay's and its synchronous clients' (breakers).
	metrics   *prometheus.Registry
	consumers *brokermetrics.Observer
	breakers  *resiliencemetrics.Observer

	ctx    context.Context // ends when the node stops
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	subs   []broker.Subscription
	stops  []func(ctx context.Context) error
}

// startNode opens the service's database, creates its schema (Courier's
// tables and the service's own), connects to the broker and starts the
// outbox relay.
func startNode(ctx context.Context, env *Env, name string, schema ...string) (*node, error) {
	db, d, err := env.OpenDB(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s: open database: %w", name, err)
	}
	if err := sqldb.Migrate(ctx, db, d); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, stmt := range schema {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			db.Close()
			return nil, fmt.Errorf("%s: schema: %w", name, err)
		}
	}
	b, err := env.OpenBroker(ctx, name)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: open broker: %w", name, err)
	}
	tr := newTracing(env, name)
	if tr != nil {
		// Sends (the relay's among them) and subscriptions are traced.
		b = tr.Broker(b)
	}
	n := &node{name: name, label: name, env: env, db: db, d: d, b: b, w: outbox.NewWriter(d), trace: env.Trace,
		tr: tr, metrics: prometheus.NewRegistry()}
	if err := n.newMetrics(); err != nil {
		db.Close()
		_ = b.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	n.ib = inbox.New(db, d, inbox.OnDuplicate(func(_ context.Context, m *message.Message) {
		n.trace.Printf(name, "skips duplicate %s %s (inbox)", shortType(m), key(m))
	}))
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if !env.ExternalRelay {
		rm, err := relaymetrics.NewRelay(n.metrics, name, relaymetrics.SourcePoll)
		if err != nil {
			n.kill()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		relay, err := outbox.NewRelay(db, d, b, outbox.WithName(name), outbox.WithOwner(name),
			outbox.WithPollInterval(10*time.Millisecond), outbox.WithLeaseTTL(2*time.Second),
			outbox.WithLogger(env.Logger), outbox.WithObserver(rm))
		if err != nil {
			n.kill()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		rm.Track(relay)
		n.wg.Go(func() {
			if err := relay.Run(n.ctx); err != nil && n.ctx.Err() == nil {
				env.Logger.Error("outbox relay stopped", slog.String("service", name), slog.Any("error", err))
			}
		})
	}
	return n, nil
}

// newMetrics creates the node's metrics in n.metrics, which its web
// endpoint serves on /metrics: what its subscriptions do with their
// messages (courier_consumer_*) and its circuit breakers' states and
// rejections (courier_resilience_*); startNode adds the relay's.
func (n *node) newMetrics() error {
	var err error
	if n.consumers, err = brokermetrics.NewObserver(n.metrics); err != nil {
		return err
	}
	n.breakers, err = resiliencemetrics.NewObserver(n.metrics)
	return err
}

// subscribe subscribes h, as the service's subscriber id, to channels. h
// runs in the transaction the inbox opens for each message, so each
// message changes the service's data once however often it is delivered;
// the dispatchers' HandleTx methods are such handlers, and what they send
// through the outbox (n.w) in that transaction commits with the rest.
func (n *node) subscribe(ctx context.Context, subscriberID string, channels []string, h inbox.TxHandler) error {
	handler := n.ib.Handler(h)
	sub, err := n.b.Subscribe(ctx, subscriberID, channels, handler,
		broker.WithLogger(n.env.Logger), broker.WithObserver(n.consumers), broker.WithMaxAttempts(20),
		broker.WithBackoff(broker.ExponentialBackoff(20*time.Millisecond, 500*time.Millisecond)))
	if err != nil {
		return fmt.Errorf("%s: subscribe to %v: %w", n.name, channels, err)
	}
	n.mu.Lock()
	n.subs = append(n.subs, sub)
	n.mu.Unlock()
	return nil
}

// commandDispatcher returns a command dispatcher for the node's
// subscriptions: its handlers run in the inbox's transaction (HandleTx),
// and it writes their replies through the outbox in that transaction. A
// nil node, which describes a service without running it (describe),
// gets a dispatcher that only lists its handlers.
func (n *node) commandDispatcher() *commands.Dispatcher {
	if n == nil {
		return commands.NewDispatcher(nil)
	}
	return commands.NewDispatcher(nil, commands.WithOutbox(n.outbox), commands.WithLogger(n.env.Logger))
}

// eventDispatcher returns an event dispatcher logging to the node's
// logger (any, for a nil node).
func (n *node) eventDispatcher() *events.Dispatcher {
	if n == nil {
		return events.NewDispatcher()
	}
	return events.NewDispatcher(events.WithLogger(n.env.Logger))
}

// eventsAndCommands routes the messages of a subscription that carries
// both to the event or the command dispatcher, in the message's
// transaction.
func eventsAndCommands(evs *events.Dispatcher, cmds *commands.Dispatcher) inbox.TxHandler {
	return func(ctx context.Context, tx *sql.Tx, m *message.Message) error {
		if m.Header(message.HeaderEventType) != "" {
			return evs.HandleTx(ctx, tx, m)
		}
		return cmds.HandleTx(ctx, tx, m)
	}
}

// onStop registers f to run when the node stops, before its
// subscriptions close.
func (n *node) onStop(f func(ctx context.Context) error) {
	n.mu.Lock()
	n.stops = append(n.stops, f)
	n.mu.Unlock()
}

// stop shuts the node down cleanly: servers, subscriptions (waiting for
// in-flight handlers), relay, broker connection and database.
func (n *node) stop(ctx context.Context) error {
	n.mu.Lock()
	stops, subs := n.stops, n.subs
	n.mu.Unlock()
	var errs []error
	for i := len(stops) - 1; i >= 0; i-- {
		errs = append(errs, stops[i](ctx))
	}
	errs = append(errs, broker.CloseAll(ctx, subs))
	n.cancel()
	n.wg.Wait()
	errs = append(errs, n.b.Close(ctx), n.db.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: stop: %w", n.name, err)
	}
	return nil
}

// kill stops the node abruptly, as a crash would: in-flight handlers are
// cancelled, nothing is drained, and in-memory state is lost. What was
// committed stays in the database; what was not acknowledged is delivered
// again.
func (n *node) kill() {
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	n.mu.Lock()
	stops, subs := n.stops, n.subs
	n.mu.Unlock()
	for _, f := range stops {
		_ = f(dead)
	}
	n.cancel()
	_ = broker.CloseAll(dead, subs)
	n.wg.Wait()
	_ = n.b.Close(dead)
	_ = n.db.Close()
}

// shortType names a message for the trace: its command, reply or event
// type without the package.
func shortType(m *message.Message) string {
	t := m.Header(message.HeaderCommandType)
	if t == "" {
		t = m.Header(message.HeaderReplyType)
	}
	if t == "" {
		t = m.Header(message.HeaderEventType)
	}
	if i := strings.LastIndexByte(t, '.'); i >= 0 {
		t = t[i+1:]
	}
	return t
}

// key is the message's partition key: the order or restaurant id.
func key(m *message.Message) string { return m.PartitionKey() }
