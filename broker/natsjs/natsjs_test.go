package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokertest"
	"github.com/courier-go/courier/broker/natsjs"
	"github.com/courier-go/courier/broker/natsjs/embedded"
	"github.com/courier-go/courier/message"
)

// startEmbedded starts an embedded server in dir and shuts it down when
// the test ends.
func startEmbedded(t *testing.T, dir string, opts ...embedded.Option) *embedded.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := embedded.Start(ctx, dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

func newBroker(t *testing.T, e *embedded.Server, opts ...natsjs.Option) *natsjs.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := e.Broker(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	brokertest.Run(t, brokertest.Suite{
		New:      func(t *testing.T) broker.Broker { return newBroker(t, e) },
		Features: brokertest.Features{Resume: true},
		Raw:      rawPublisher(e),
	})
}

// rawPublisher publishes as a plain nats.go client would, to the subject
// of the key's shard, with the headers as they are.
func rawPublisher(e *embedded.Server) func(*testing.T, broker.Broker, string, string, message.Headers, []byte) error {
	return func(t *testing.T, _ broker.Broker, channel, key string, headers message.Headers, payload []byte) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		nc, err := e.Connect()
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		stream, err := js.Stream(ctx, natsjs.StreamName(channel))
		if err != nil {
			return fmt.Errorf("the channel's stream: %w", err)
		}
		shards, err := strconv.Atoi(stream.CachedInfo().Config.Metadata[natsjs.MetaShards])
		if err != nil {
			return fmt.Errorf("the channel's shard count: %w", err)
		}
		msg := nats.NewMsg(fmt.Sprintf("courier.%s.%d", channel, natsjs.ShardOf(key, shards)))
		for k, v := range headers {
			msg.Header[k] = []string{v}
		}
		msg.Data = payload
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			// The client refuses what it cannot encode; the server
			// refuses headers over 64 KiB. Neither is stored.
			var apiErr *jetstream.APIError
			if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadHeaderMsg) ||
				errors.As(err, &apiErr) && apiErr.ErrorCode == 10097 { // headers over 64 KiB
				return fmt.Errorf("%w: %w", brokertest.ErrUnpublishable, err)
			}
			return err
		}
		return nil
	}
}

// testLogger sends logs to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// collector records deliveries by message ID.
type collector struct {
	mu   sync.Mutex
	seen map[string]*message.Message
	info map[string]broker.DeliveryInfo
}

func newCollector() *collector {
	return &collector{seen: make(map[string]*message.Message), info: make(map[string]broker.DeliveryInfo)}
}

func (c *collector) handle(ctx context.Context, m *message.Message) error {
	info, _ := broker.Delivery(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[m.ID] = m
	c.info[m.ID] = info
	return nil
}

func (c *collector) get(id string) (*message.Message, broker.DeliveryInfo, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.seen[id]
	return m, c.info[id], ok
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *collector) missing(ids []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, id := range ids {
		if _, ok := c.seen[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Headers that NATS cannot carry verbatim arrive as they were sent; the
// reserved ones do not leak.
func TestHeadersThatNATSCannotCarry(t *testing.T) {
	ctx := t.Context()
	e := startEmbedded(t, t.TempDir())
	b := newBroker(t, e)
	defer b.Close(ctx)
	rec := newCollector()
	sub, err := b.Subscribe(ctx, "reader", []string{"tricky"}, broker.HandlerFunc(rec.handle), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	headers := message.Headers{
		"Nats-Expected-Stream": "not-a-stream",
		"nats-msg-id":          "lower case",
		"Courier-Hdr-x":        "looks escaped",
		"line":                 "one\r\ntwo",
		"blanks":               "  padded\t",
		"with space":           "v",
		"colon:name":           "a: b",
		"percent%+":            "100%+",
		"DATE":                 "Thu, 01 Jan 2026 00:00:00 GMT",
		"DESTINATION":          "somewhere-else",
	}
	m := &message.Message{ID: " odd id\n", Headers: headers, Payload: []byte("x")}
	if err := b.Send(ctx, "tricky", m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the message", func() bool { return rec.count() == 1 })
	got, _, ok := rec.get(m.ID)
	if !ok {
		t.Fatalf("message arrived with another ID: %v", rec.seen)
	}
	for k, v := range headers {
		want := v
		if k == message.HeaderDestination {
			want = "tricky" // always the channel it was sent to
		}
		if got.Header(k) != want {
			t.Errorf("header %q = %q, want %q", k, got.Header(k), want)
		}
	}
	for k := range got.Headers {
		if k == message.HeaderID || strings.HasPrefix(strings.ToLower(k), "nats-") && headers[k] == "" {
			t.Errorf("reserved header %q delivered", k)
		}
	}
	if len(got.Headers) != len(headers) {
		t.Errorf("got headers %v, want %v", got.Headers, headers)
	}
}

// A channel keeps the number of shards it was created with, whatever the
// options of the brokers that use it later.
func TestShardCountFollowsTheStream(t *testing.T) {
	ctx := t.Context()
	e := startEmbedded(t, t.TempDir())
	first := newBroker(t, e, natsjs.WithShards(3))
	defer first.Close(ctx)
	if err := first.Send(ctx, "three-shards", message.New(nil)); err != nil {
		t.Fatal(err)
	}
	second := newBroker(t, e, natsjs.WithShards(32))
	defer second.Close(ctx)
	rec := newCollector()
	sub, err := second.Subscribe(ctx, "reader", []string{"three-shards"}, broker.HandlerFunc(rec.handle), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close(ctx)
	var ids []string
	for i := range 30 {
		m := message.NewBuilder(nil).WithPartitionKey(fmt.Sprint("key-", i)).Build()
		if err := second.Send(ctx, "three-shards", m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	waitFor(t, 10*time.Second, "30 messages", func() bool { return len(rec.missing(ids)) == 0 })
	for _, id := range ids {
		if _, info, _ := rec.get(id); info.Shard < 0 || info.Shard >= 3 {
			t.Errorf("message %s on shard %d of a 3-shard channel", id, info.Shard)
		}
	}
}

// A server that shuts down in the middle of a stream of messages and
// starts again on the same directory delivers every message whose Send
// succeeded, to a subscriber that subscribes again.
func TestRestartKeepsEveryAcceptedMessage(t *testing.T) {
	dir := t.TempDir()
	const channel, subscriber = "orders", "billing"
	// Short settings so that the instance that died with the first server
	// gives up its shards and its in-flight message quickly.
	opts := []natsjs.Option{natsjs.WithMembershipTTL(time.Second), natsjs.WithAckWait(time.Second), natsjs.WithShards(4)}
	rec := newCollector()
	ctx := t.Context()

	e1, err := embedded.Start(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	b1 := newBroker(t, e1, opts...)
	sub1, err := b1.Subscribe(ctx, subscriber, []string{channel}, broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		time.Sleep(time.Millisecond) // fall behind the producer
		return rec.handle(ctx, m)
	}), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}

	var accepted []string
	stopped := false
	for i := 0; ; i++ {
		m := message.NewBuilder([]byte(fmt.Sprint(i))).WithPartitionKey(fmt.Sprint("order-", i%10)).Build()
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := b1.Send(sctx, channel, m)
		cancel()
		if err == nil {
			accepted = append(accepted, m.ID)
		} else if !stopped {
			t.Fatalf("Send before the shutdown: %v", err)
		}
		if i == 200 {
			// Shut down under load, without closing the broker.
			go func() { _ = e1.Shutdown(context.Background()) }()
			stopped = true
		}
		if stopped && err != nil {
			break
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if err := e1.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	t.Logf("%d messages accepted before the shutdown, %d handled", len(accepted), rec.count())
	closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	if err := sub1.Close(closeCtx); err != nil {
		t.Errorf("closing the subscription of a stopped server: %v", err)
	}
	if err := b1.Close(closeCtx); err != nil {
		t.Errorf("closing the broker of a stopped server: %v", err)
	}
	cancel()
	if err := b1.Send(ctx, channel, message.New(nil)); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}

	e2 := startEmbedded(t, dir)
	b2 := newBroker(t, e2, opts...)
	defer b2.Close(ctx)
	sub2, err := b2.Subscribe(ctx, subscriber, []string{channel}, broker.HandlerFunc(rec.handle), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close(ctx)
	waitFor(t, 30*time.Second, "every accepted message after the restart", func() bool { return len(rec.missing(accepted)) == 0 })
}

// shardTracker records which instances handled each shard.
type shardTracker struct {
	rec   *collector
	mu    sync.Mutex
	owner map[int]map[string]bool // shard -> instances that handled it
}

func newShardTracker(rec *collector) *shardTracker {
	return &shardTracker{rec: rec, owner: make(map[int]map[string]bool)}
}

func (st *shardTracker) handler(instance string) broker.HandlerFunc {
	return func(ctx context.Context, m *message.Message) error {
		info, _ := broker.Delivery(ctx)
		st.mu.Lock()
		if st.owner[info.Shard] == nil {
			st.owner[info.Shard] = map[string]bool{}
		}
		st.owner[info.Shard][instance] = true
		st.mu.Unlock()
		return st.rec.handle(ctx, m)
	}
}

// waitForSplit sends batches of messages until, within one batch, every
// shard went to a single instance and all want instances had a share.
func (st *shardTracker) waitForSplit(t *testing.T, want int, send func(n int) []string) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for {
		st.mu.Lock()
		clear(st.owner)
		st.mu.Unlock()
		ids := send(64)
		waitFor(t, 20*time.Second, "a batch", func() bool { return len(st.rec.missing(ids)) == 0 })
		st.mu.Lock()
		exclusive, instances := true, map[string]bool{}
		for _, set := range st.owner {
			exclusive = exclusive && len(set) == 1
			for name := range set {
				instances[name] = true
			}
		}
		owner := fmt.Sprint(st.owner)
		st.mu.Unlock()
		if exclusive && len(instances) == want {
			t.Logf("shards shared out after %v", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %d instances do not share the shards out: %s", want, owner)
		}
	}
}

// sender returns a function that sends n keyed messages and returns their
// IDs.
func sender(t *testing.T, b broker.Producer, channel string) func(n int) []string {
	return func(n int) []string {
		var ids []string
		for i := range n {
			m := message.NewBuilder(nil).WithPartitionKey(fmt.Sprint(i)).Build()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			err := b.Send(ctx, channel, m)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		return ids
	}
}

// A Broker opened over TCP rides out a restart of its server: the
// subscription carries on by itself, and its membership too, so that an
// instance that joins after the restart gets its share of the shards.
func TestReconnectAfterServerRestart(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	ctx := t.Context()
	e1, b := openOverTCP(t, dir, port, natsjs.WithAckWait(time.Second))

	rec := newCollector()
	st := newShardTracker(rec)
	subscribe := func(instance string) {
		s, err := b.Subscribe(ctx, "reader", []string{"events"}, st.handler(instance), broker.WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(context.Background()) })
	}
	send := sender(t, b, "events")

	subscribe("before")
	ids := send(50)
	waitFor(t, 10*time.Second, "the messages before the restart", func() bool { return len(rec.missing(ids)) == 0 })
	if err := e1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	startEmbedded(t, dir, embedded.WithListenPort(port))
	ids = send(50)
	waitFor(t, 30*time.Second, "the messages after the restart", func() bool { return len(rec.missing(ids)) == 0 })

	subscribe("after")
	st.waitForSplit(t, 2, send)
}

// openOverTCP starts a server in dir listening on port, which the test
// shuts down itself to restart it, and opens a Broker on it over TCP,
// closed when the test ends.
func openOverTCP(t *testing.T, dir string, port int, opts ...natsjs.Option) (*embedded.Server, *natsjs.Broker) {
	t.Helper()
	e, err := embedded.Start(t.Context(), dir, embedded.WithListenPort(port))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	b, err := natsjs.Open(ctx, e.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	return e, b
}

// Subscribe's context bounds the set-up only: cancelling it afterwards
// stops neither the delivery nor the membership.
func TestSubscribeContextBoundsOnlyTheSetUp(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	b := newBroker(t, e)
	defer b.Close(context.Background())
	rec := newCollector()
	st := newShardTracker(rec)
	for _, name := range []string{"first", "second", "third"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := b.Subscribe(ctx, "reader", []string{"events"}, st.handler(name), broker.WithLogger(testLogger(t)))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
	}
	st.waitForSplit(t, 3, sender(t, b, "events"))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestOpenFailsFastWhenNoServerAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	b, err := natsjs.Open(ctx, "nats://127.0.0.1:1")
	if err == nil {
		b.Close(ctx)
		t.Fatal("Open of an unreachable server succeeded")
	}
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Errorf("Open took %v to fail", took)
	}
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("error does not name the server: %v", err)
	}
	t.Log(err)
}

// TestOpenHidesSecrets checks that Open's errors show neither a password
// (percent-encoded or not) nor a token of the URL, for a server that does
// not answer and one that refuses the credentials.
func TestOpenHidesSecrets(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), embedded.WithListenPort(0), embedded.WithServerOptions(func(o *server.Options) {
		o.Username, o.Password = "courier", "secret"
	}))
	served := strings.TrimPrefix(e.ClientURL(), "nats://")
	for _, raw := range []string{"nats://courier:s3cret@127.0.0.1:1", "nats://courier:s3cr%65t@127.0.0.1:1", "nats://s3cret@127.0.0.1:1",
		"nats://courier:s3cret@" + served, "nats://courier:s3cr%65t@" + served, "nats://s3cret@" + served} {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		b, err := natsjs.Open(ctx, raw)
		cancel()
		if err == nil {
			b.Close(t.Context())
			t.Errorf("Open(%q) succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "s3cr%65t") {
			t.Errorf("Open(%q) = %v", raw, err)
		}
	}
}

func TestOpenRefusesWrongCredentials(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), embedded.WithListenPort(0), embedded.WithServerOptions(func(o *server.Options) {
		o.Username, o.Password = "courier", "secret"
	}))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	b, err := natsjs.Open(ctx, e.ClientURL(), natsjs.WithNATSOptions(nats.UserInfo("courier", "wrong")))
	if err == nil {
		b.Close(ctx)
		t.Fatal("Open with wrong credentials succeeded")
	}
	if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("error does not say the credentials were refused: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Open took %v to fail", took)
	}
	b, err = natsjs.Open(ctx, e.ClientURL(), natsjs.WithNATSOptions(nats.UserInfo("courier", "secret")))
	if err != nil {
		t.Fatalf("Open with the right credentials: %v", err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOpenWithoutJetStream(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server did not start")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	b, err := natsjs.Open(ctx, srv.ClientURL())
	if err == nil {
		b.Close(ctx)
		t.Fatal("Open of a server without JetStream succeeded")
	}
	if !strings.Contains(err.Error(), "JetStream") {
		t.Errorf("error does not mention JetStream: %v", err)
	}
}

func TestOptionsAreValidated(t *testing.T) {
	e := startEmbedded(t, t.TempDir())
	ctx := t.Context()
	for _, opt := range []natsjs.Option{
		natsjs.WithShards(0), natsjs.WithReplicas(0), natsjs.WithMaxAge(-1),
		natsjs.WithAckWait(time.Millisecond), natsjs.WithMembershipTTL(0),
		natsjs.WithPublishTimeout(0), natsjs.WithLimits(message.Limits{MaxPayloadBytes: -1}),
	} {
		if b, err := e.Broker(ctx, opt); err == nil {
			b.Close(ctx)
			t.Error("an invalid option was accepted")
		}
	}
	if _, err := embedded.Start(ctx, ""); err == nil {
		t.Error("embedded.Start without a directory succeeded")
	}
	if _, err := natsjs.New(ctx, nil); err == nil {
		t.Error("New with a nil connection succeeded")
	}
}

// An instance that stops heartbeating, as when its process dies, loses its
// shards once its membership key expires, and the message it held is
// delivered again to the instance that takes over, after the ack wait.
func TestCrashedInstanceGivesUpItsShards(t *testing.T) {
	ctx := t.Context()
	e := startEmbedded(t, t.TempDir())
	opts := []natsjs.Option{natsjs.WithMembershipTTL(time.Second), natsjs.WithAckWait(time.Second), natsjs.WithShards(4)}
	const channel, subscriber = "jobs", "workers"

	// The instance that will crash runs on a connection of its own, so
	// that the test can cut it off the server.
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	crashing, err := natsjs.New(ctx, nc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan string, 1)
	doomed, err := crashing.Subscribe(ctx, subscriber, []string{channel}, broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		select {
		case held <- m.ID:
		default:
		}
		<-ctx.Done() // hangs until the test closes the subscription
		return ctx.Err()
	}), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}

	b := newBroker(t, e, opts...)
	defer b.Close(ctx)
	var ids []string
	for i := range 40 {
		m := message.NewBuilder(nil).WithPartitionKey(fmt.Sprint("job-", i)).Build()
		if err := b.Send(ctx, channel, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	var heldID string
	select {
	case heldID = <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the doomed instance got no message")
	}
	nc.Close() // the crash: no more heartbeats, acks or progress

	rec := newCollector()
	survivor, err := b.Subscribe(ctx, subscriber, []string{channel}, broker.HandlerFunc(rec.handle), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer survivor.Close(ctx)
	waitFor(t, 20*time.Second, "every message at the survivor", func() bool { return len(rec.missing(ids)) == 0 })
	if _, info, _ := rec.get(heldID); info.Attempt < 2 {
		t.Errorf("the message held by the crashed instance arrived as attempt %d, want at least 2", info.Attempt)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := doomed.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("closing the crashed instance = %v, want DeadlineExceeded (its handler hangs)", err)
	}
	if err := crashing.Close(ctx); err != nil {
		t.Errorf("closing the crashed broker: %v", err)
	}
}
