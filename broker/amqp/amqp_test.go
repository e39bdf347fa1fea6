package amqp_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/amqp"
	"github.com/courier-go/courier/broker/brokertest"
	"github.com/courier-go/courier/internal/testenv"
	"github.com/courier-go/courier/message"
)

// The server the tests use, and its default: the one
// scripts/services/rabbitmq.sh starts.
const (
	urlEnv     = "COURIER_AMQP_URL"
	defaultURL = "amqp://guest:guest@127.0.0.1:5672/"
)

var (
	probeOnce sync.Once
	probeErr  error
)

// serverURL returns the test server's URL. When the server is unreachable
// the test is skipped, except under CI, where it fails.
func serverURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv(urlEnv)
	if u == "" {
		u = defaultURL
	}
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b, err := amqp.Open(ctx, u)
		if err != nil {
			probeErr = err
			return
		}
		probeErr = b.Close(ctx)
	})
	if probeErr != nil {
		msg := fmt.Sprintf("RabbitMQ unavailable (%v); start RabbitMQ with scripts/services/rabbitmq.sh (or set %s)", probeErr, urlEnv)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return u
}

// testOptions keep the server tidy: the queues of the tests' subscriber ids
// expire soon after the tests are done with them. (Every queue left slows
// down the restart of the server in TestServerRestart.)
var testOptions = []amqp.Option{amqp.WithQueueExpiry(20 * time.Second)}

func open(t *testing.T, u string, opts ...amqp.Option) *amqp.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := amqp.Open(ctx, u, append(append([]amqp.Option{}, testOptions...), opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return b
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// restartServer restarts the RabbitMQ application of the local node.
func restartServer(t *testing.T, u string) func() {
	t.Helper()
	testenv.RequireRestarts(t, "RabbitMQ")
	skip := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	switch parsed.Hostname() {
	case "127.0.0.1", "localhost", "::1":
	default:
		t.Skipf("the server at %s is not local; cannot restart it", parsed.Host)
	}
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		skip("rabbitmqctl not found; cannot restart the server: %v", err)
	}
	ctl := func(args ...string) error {
		out, err := exec.Command("rabbitmqctl", append([]string{"-q"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("rabbitmqctl %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ctl("status"); err != nil {
		skip("cannot control the local RabbitMQ node: %v", err)
	}
	return func() {
		t.Helper()
		t.Cleanup(func() { _ = ctl("start_app") }) // in case the test stops half way
		start := time.Now()
		if err := ctl("stop_app"); err != nil {
			t.Fatal(err)
		}
		if err := ctl("start_app"); err != nil {
			t.Fatal(err)
		}
		t.Logf("server restarted in %v", time.Since(start).Round(time.Millisecond))
	}
}

// TestServerRestart restarts RabbitMQ while messages flow: every message
// whose Send returned nil must be delivered once the broker has reconnected,
// and the messages of each key must stay in order.
func TestServerRestart(t *testing.T) {
	u := serverURL(t)
	restart := restartServer(t, u)
	b := open(t, u, amqp.WithReconnectBackoff(50*time.Millisecond, time.Second), amqp.WithLogger(testLogger(t)))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	prefix := fmt.Sprintf("restart-%06x", rand.Uint32()&0xffffff)
	ch, id := prefix+".ch", prefix+".sub"

	var (
		mu       sync.Mutex
		received = map[string]int{}
		last     = map[string]int{} // key -> highest seq handled
		problems []string
	)
	handler := broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		seq, _ := strconv.Atoi(m.Header("seq"))
		key := m.PartitionKey()
		mu.Lock()
		defer mu.Unlock()
		received[m.ID]++
		prev, seen := last[key]
		switch {
		case received[m.ID] > 1: // a duplicate, allowed after a failure
		case seen && seq != prev+1 || !seen && seq != 0:
			if len(problems) < 10 {
				problems = append(problems, fmt.Sprintf("key %s: seq %d after %d", key, seq, prev))
			}
		}
		last[key] = max(prev, seq)
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sub, err := b.Subscribe(ctx, id, []string{ch}, handler, broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sub.Close(ctx); err != nil {
			t.Errorf("Subscription.Close: %v", err)
		}
	}()

	var (
		stopSending atomic.Bool
		sentMu      sync.Mutex
		sent        []string
		sendErrs    atomic.Int32
		senders     sync.WaitGroup
	)
	const keys = 8
	for k := range keys {
		senders.Go(func() {
			key := fmt.Sprintf("key-%d", k)
			for seq := 0; !stopSending.Load(); seq++ {
				m := message.NewBuilder([]byte(fmt.Sprintf("%s/%d", key, seq))).
					WithPartitionKey(key).WithHeader("seq", strconv.Itoa(seq)).Build()
				// As an application would: retry until the broker
				// confirms, so that the sequence has no gap.
				for {
					sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					err := b.Send(sctx, ch, m)
					cancel()
					if err == nil {
						break
					}
					sendErrs.Add(1)
					t.Logf("Send (will retry): %v", err)
				}
				sentMu.Lock()
				sent = append(sent, m.ID)
				sentMu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	restart()
	time.Sleep(time.Second)
	stopSending.Store(true)
	senders.Wait()

	sentMu.Lock()
	want := append([]string(nil), sent...)
	sentMu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		missing := 0
		for _, id := range want {
			if received[id] == 0 {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d confirmed messages never delivered after the restart", missing, len(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for _, n := range received {
		dups += n - 1
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d messages confirmed and delivered across the restart, %d delivered twice, %d sends retried", len(want), dups, sendErrs.Load())
}

func TestConformance(t *testing.T) {
	u := serverURL(t)
	for _, qt := range []amqp.QueueType{amqp.QuorumQueue, amqp.ClassicQueue} {
		t.Run(string(qt), func(t *testing.T) {
			brokertest.Run(t, brokertest.Suite{
				New: func(t *testing.T) broker.Broker {
					return open(t, u, amqp.WithQueueType(qt), amqp.WithLogger(testLogger(t)))
				},
				// Queues are durable: a subscriber id that comes back
				// finds the messages sent while it was away.
				// RabbitMQ activates the next consumer in line on
				// a shard queue that an instance hands over.
				Features: brokertest.Features{Resume: true, BrokerPicksNextOwner: true},
				Raw:      rawPublisher(u),
			})
		})
	}
}

// rawPublisher publishes as a plain amqp091-go client would: to the
// channel's exchange, with the routing key Send gives the partition key
// (amqp.RoutingKey), the headers as a header table, in confirm mode.
func rawPublisher(u string) func(*testing.T, broker.Broker, string, string, message.Headers, []byte) error {
	return func(t *testing.T, _ broker.Broker, channel, key string, headers message.Headers, payload []byte) error {
		conn, err := amqp091.Dial(u)
		if err != nil {
			return err
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		if err := ch.Confirm(false); err != nil {
			return err
		}
		table := amqp091.Table{}
		for k, v := range headers {
			table[k] = v
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, channel, amqp.RoutingKey(key), false, false,
			amqp091.Publishing{Headers: table, Body: payload, DeliveryMode: amqp091.Persistent})
		if err != nil {
			if strings.Contains(err.Error(), "exceeds 255 bytes") {
				// The client cannot encode a longer field-table name.
				return fmt.Errorf("%w: %w", brokertest.ErrUnpublishable, err)
			}
			return err
		}
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: nacked", brokertest.ErrUnpublishable)
		}
		return nil
	}
}

func TestWrongCredentials(t *testing.T) {
	u := serverURL(t)
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	const secret = "not-the-password-4711"
	parsed.User = url.UserPassword("courier-nobody", secret)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	b, err := amqp.Open(ctx, parsed.String())
	if err == nil {
		b.Close(ctx)
		t.Fatal("Open with wrong credentials succeeded")
	}
	t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %v to report wrong credentials", time.Since(start))
	}
	if !strings.Contains(err.Error(), "password") {
		t.Errorf("error does not say what is wrong: %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error reveals the password: %v", err)
	}
}

func TestUnreachableServer(t *testing.T) {
	// A port nobody listens on: refused at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if b, err := amqp.Open(ctx, "amqp://guest:guest@"+closedPort+"/"); err == nil {
		b.Close(ctx)
		t.Fatal("Open of a closed port succeeded")
	} else {
		t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
		if !strings.Contains(err.Error(), "unreachable") {
			t.Errorf("error does not say the server is unreachable: %v", err)
		}
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %v to report a closed port", time.Since(start))
	}

	// A server that accepts connections but never answers: Open gives up
	// when its context ends.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held sync.WaitGroup
	held.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	defer held.Wait()
	defer silent.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	if b, err := amqp.Open(ctx, "amqp://guest:guest@"+silent.Addr().String()+"/"); err == nil {
		b.Close(context.Background())
		t.Fatal("Open of a silent server succeeded")
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open of a silent server = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open of a silent server returned after %v, its context allowed 300ms", d)
	}
}

func TestInvalidOptions(t *testing.T) {
	ctx := context.Background()
	for name, opt := range map[string]amqp.Option{
		"shards":    amqp.WithShards(0),
		"shards3":   amqp.WithShards(3),
		"prefetch":  amqp.WithPrefetch(0),
		"queueType": amqp.WithQueueType("stream"),
		"expiry":    amqp.WithQueueExpiry(time.Millisecond),
		"logger":    amqp.WithLogger(nil),
		"limits":    amqp.WithLimits(message.Limits{MaxPayloadBytes: -1}),
		"backoff":   amqp.WithReconnectBackoff(time.Second, time.Millisecond),
		"rebalance": amqp.WithRebalanceInterval(0),
	} {
		if _, err := amqp.Open(ctx, defaultURL, opt); err == nil {
			t.Errorf("%s: Open accepted an invalid option", name)
		}
	}
	if _, err := amqp.Open(ctx, "http://example.com/"); err == nil {
		t.Error("Open accepted an http URL")
	}
}

// TestGoroutinesEnd checks that every goroutine the broker starts ends
// with Close.
func TestGoroutinesEnd(t *testing.T) {
	u := serverURL(t)
	before := runtime.NumGoroutine()
	b := open(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ch := fmt.Sprintf("leak-%06x.ch", rand.Uint32()&0xffffff)
	got := make(chan struct{}, 1)
	for _, id := range []string{"a", "b"} {
		if _, err := b.Subscribe(ctx, ch+"."+id, []string{ch}, broker.HandlerFunc(func(context.Context, *message.Message) error {
			select {
			case got <- struct{}{}:
			default:
			}
			return nil
		})); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(ctx, ch, message.New([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("message not delivered")
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before Open, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
