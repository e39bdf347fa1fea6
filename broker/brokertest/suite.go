// Package brokertest is the conformance suite of the broker port. Every
// broker adapter runs it, declaring through Features what it cannot promise:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, brokertest.Suite{
//			New:      func(t *testing.T) broker.Broker { ... },
//			Features: brokertest.Features{Resume: true},
//		})
//	}
//
// With go test -short the suite sends fewer messages; without it (as in CI)
// the ordering test sends 10,000 messages over 100 keys while instances join
// and leave.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/message"
)

// Features declares what an adapter promises beyond the core semantics,
// which every adapter must meet.
type Features struct {
	// Resume means a subscriber id that closes its last instance and
	// subscribes again receives every message sent in between.
	Resume bool
	// RebalanceDuplicates means an instance joining or leaving may cause
	// messages already handled to be delivered again (still in order). The
	// suite then tolerates such duplicates instead of failing on them.
	RebalanceDuplicates bool
	// BrokerPicksNextOwner means the broker, not the adapter, chooses
	// which waiting instance takes a shard another hands over (RabbitMQ's
	// single-active consumers take the next in line), so that a join can
	// move more shards than a sticky assignment would. The suite then
	// reports the moves on join and leave without failing on them.
	BrokerPicksNextOwner bool
	// NoDeadLetterStore means the broker keeps nothing that could hold
	// dead letters for an operator to browse (a brokerless adapter): it
	// need not implement broker.DeadLetterBrowser, and the suite skips
	// that test instead of failing it.
	NoDeadLetterStore bool
	// MaxPayloadBytes is the largest payload the adapter accepts by
	// default; 0 means message.DefaultMaxPayloadBytes. The suite sends a
	// payload of this size and expects one byte more to be refused.
	MaxPayloadBytes int
	// Timeout bounds each wait for deliveries; 0 means 20 seconds.
	Timeout time.Duration
}

func (f Features) timeout() time.Duration {
	if f.Timeout > 0 {
		return f.Timeout
	}
	return 20 * time.Second
}

func (f Features) maxPayload() int {
	if f.MaxPayloadBytes > 0 {
		return f.MaxPayloadBytes
	}
	return message.DefaultMaxPayloadBytes
}

// Suite is an adapter's entry to the conformance suite.
type Suite struct {
	// New returns a broker for one test, connected to a server that may be
	// shared with other tests: the suite isolates tests by giving each its
	// own channel and subscriber names. The suite closes the broker.
	New func(t *testing.T) broker.Broker
	// Features declares the adapter's extra promises.
	Features Features
	// Raw publishes one message to a channel of b (the test's broker,
	// made by New) as a producer that does not use Courier would: through the broker's own client, with the
	// headers and payload as given, mapped to the broker's native
	// headers as the adapter's Send maps them but checked against
	// nothing, and routed to the shard of the partition key key as Send
	// routes it. The suite uses it to send malformed messages (an empty
	// header name, headers or payload over the limits, text that is not
	// UTF-8) and checks that each leaves its shard. Raw returns an error
	// wrapping ErrUnpublishable where the broker or its client refuses
	// such a message, so that none can reach a consumer. Raw must be
	// set: every adapter's messages can come from other clients.
	Raw func(t *testing.T, b broker.Broker, channel, key string, headers message.Headers, payload []byte) error
}

// ErrUnpublishable is wrapped by a Suite's Raw function when the broker's
// own client or server refuses a message, so that no consumer can meet it.
var ErrUnpublishable = errors.New("brokertest: the broker refuses such a message")

// Run runs every conformance test as a subtest of t.
func Run(t *testing.T, s Suite) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"PayloadAndHeadersIntact", testPayloadAndHeaders},
		{"ChannelsIsolated", testChannelsIsolated},
		{"EverySubscriberIDGetsEverything", testPublishSubscribe},
		{"CompetingInstancesSplitTheLoad", testCompetingInstances},
		{"PerKeyOrderWhileInstancesJoinAndLeave", testOrderWithRebalance},
		{"PerKeyOrderWithRetries", testOrderWithRetries},
		{"ShardMovesOnJoinAndLeave", testShardMoves},
		{"ShardsRunConcurrently", testShardsConcurrent},
		{"RedeliveryAfterErrors", testRedelivery},
		{"DeadLetter", testDeadLetter},
		{"DeadLettersBrowseReplayPurge", testDeadLetterBrowser},
		{"PoisonMessageDoesNotStallItsShard", testPoisonDoesNotStall},
		{"MalformedMessagesLeaveTheirShard", testMalformed},
		{"CloseWaitsForInFlightHandlers", testCloseWaits},
		{"CloseAndResumeWithoutLoss", testCloseAndResume},
		{"ConcurrentPublishers", testConcurrentPublishers},
		{"ContextCancellation", testContextCancellation},
		{"LargePayload", testLargePayload},
		{"InvalidInput", testInvalidInput},
		{"ClosedBroker", testClosedBroker},
		{"RemoveChannel", testRemoveChannel},
		{"RemoveSubscriber", testRemoveSubscriber},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runTest(t, s, tt.fn) })
	}
	// An ephemeral subscription keeps every promise that a single
	// instance's durable one makes while it lives, whether the adapter
	// honours the hint or ignores it.
	ephemeral := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"PayloadAndHeadersIntact", testPayloadAndHeaders},
		{"ChannelsIsolated", testChannelsIsolated},
		{"EverySubscriberIDGetsEverything", testPublishSubscribe},
		{"PerKeyOrderWithRetries", testOrderWithRetries},
		{"RedeliveryAfterErrors", testRedelivery},
		{"DeadLetter", testDeadLetter},
		{"PoisonMessageDoesNotStallItsShard", testPoisonDoesNotStall},
		{"CloseWaitsForInFlightHandlers", testCloseWaits},
		{"ConcurrentPublishers", testConcurrentPublishers},
		{"LargePayload", testLargePayload},
	}
	t.Run("Ephemeral", func(t *testing.T) {
		for _, tt := range ephemeral {
			t.Run(tt.name, func(t *testing.T) { runTest(t, s, tt.fn, broker.WithEphemeral()) })
		}
	})
	// Concurrent delivery keeps every promise but order: the tests that
	// do not check order run again in that mode, with two of its own.
	concurrent := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"PayloadAndHeadersIntact", testPayloadAndHeaders},
		{"ChannelsIsolated", testChannelsIsolated},
		{"EverySubscriberIDGetsEverything", testPublishSubscribe},
		{"CompetingInstancesSplitTheLoad", testCompetingInstances},
		{"InFlightUpToTheLimit", testInFlightLimit},
		{"EveryMessageWhileInstancesJoinAndLeave", testEveryMessageWithRebalance},
		{"RedeliveryAfterErrors", testRedelivery},
		{"DeadLetter", testDeadLetter},
		{"PoisonMessageDoesNotStallItsShard", testPoisonDoesNotStall},
		{"MalformedMessagesLeaveTheirShard", testMalformed},
		{"CloseWaitsForInFlightHandlers", testCloseWaits},
		{"CloseAndResumeWithoutLoss", testCloseAndResume},
		{"ContextCancellation", testContextCancellation},
		{"LargePayload", testLargePayload},
		{"RemoveSubscriber", testRemoveSubscriber},
	}
	t.Run("Concurrent", func(t *testing.T) {
		for _, tt := range concurrent {
			t.Run(tt.name, func(t *testing.T) {
				runTest(t, s, tt.fn, broker.WithConcurrentDelivery(concurrentInFlight))
			})
		}
	})
}

// concurrentInFlight is the limit the Concurrent tests subscribe with.
const concurrentInFlight = 16

// runTest runs one conformance test on a broker of its own; opts are added
// to every subscription the test makes through env.subscribe.
func runTest(t *testing.T, s Suite, fn func(*testing.T, *env), opts ...broker.SubscribeOption) {
	e := &env{t: t, suite: s, prefix: uniquePrefix(t), opts: opts, names: make(map[string]bool), subscribers: make(map[string][]string)}
	e.b = s.New(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.b.Close(ctx); err != nil {
			t.Errorf("closing the broker: %v", err)
		}
	})
	// After the test's subscriptions closed (cleanups run last first),
	// before the broker does.
	t.Cleanup(e.removeAll)
	fn(t, e)
}

// env is one test's broker and names.
type env struct {
	t      *testing.T
	suite  Suite
	b      broker.Broker
	prefix string
	opts   []broker.SubscribeOption // added to every subscription

	mu          sync.Mutex
	names       map[string]bool     // every name the test made, a channel or not
	subscribers map[string][]string // subscriber id -> its channels, for the clean-up
}

func uniquePrefix(t *testing.T) string {
	name := t.Name()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("ct-%s-%06x", name, rand.Uint32()&0xffffff)
}

// name returns a channel or subscriber name unique to the test.
func (e *env) name(part string) string {
	n := e.prefix + "." + part
	e.mu.Lock()
	e.names[n] = true
	e.mu.Unlock()
	return n
}

// track notes a subscription's subscriber id and channels, and its
// dead-letter channel, for removeAll.
func (e *env) track(id string, channels []string, opts ...broker.SubscribeOption) {
	cfg, err := adapter.NewSubscribeConfig(id, channels, broker.HandlerFunc(func(context.Context, *message.Message) error { return nil }), opts...)
	if err != nil {
		return // the Subscribe fails too
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.subscribers[id] = append(e.subscribers[id], cfg.Channels...)
	e.names[cfg.DeadLetterChannel] = true
}

// removeAll removes, where the broker can, what the test left on its
// server: the subscriber ids' positions and queues, then the channels. A
// server shared by many test runs would otherwise keep them for good.
func (e *env) removeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.b.(broker.SubscriberRemover); ok {
		for id, channels := range e.subscribers {
			if err := r.RemoveSubscriber(ctx, id, channels); err != nil {
				e.t.Logf("clean-up (left behind): RemoveSubscriber(%q, %v): %v", id, channels, err)
			}
		}
	}
	if r, ok := e.b.(broker.ChannelRemover); ok {
		for name := range e.names {
			if err := r.RemoveChannel(ctx, name); err != nil {
				e.t.Logf("clean-up (left behind): RemoveChannel(%q): %v", name, err)
			}
		}
	}
}

func (e *env) timeout() time.Duration { return e.suite.Features.timeout() }

func (e *env) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout())
	e.t.Cleanup(cancel)
	return ctx
}

// logger sends the subscriptions' logs to the test's output, so that the
// expected failures of the retry tests show only with -v or on failure.
func (e *env) logger() broker.SubscribeOption {
	return broker.WithLogger(slog.New(slog.NewTextHandler(e.t.Output(), nil)))
}

// concurrent reports whether the test runs in concurrent delivery mode,
// which promises no order.
func (e *env) concurrent() bool {
	cfg, err := adapter.NewSubscribeConfig("x", []string{"y"}, broker.HandlerFunc(func(context.Context, *message.Message) error { return nil }), e.opts...)
	return err == nil && cfg.Delivery == broker.DeliveryConcurrent
}

// with returns the test's options followed by opts, for the tests that
// call Subscribe themselves.
func (e *env) with(opts ...broker.SubscribeOption) []broker.SubscribeOption {
	return append(append([]broker.SubscribeOption{e.logger()}, e.opts...), opts...)
}

// subscribe subscribes and closes the subscription when the test ends.
func (e *env) subscribe(id string, channels []string, h broker.HandlerFunc, opts ...broker.SubscribeOption) broker.Subscription {
	e.t.Helper()
	opts = e.with(opts...)
	e.track(id, channels, opts...)
	sub, err := e.b.Subscribe(e.ctx(), id, channels, h, opts...)
	if err != nil {
		e.t.Fatalf("Subscribe(%q, %v): %v", id, channels, err)
	}
	e.t.Cleanup(func() { closeSub(e.t, sub) })
	return sub
}

func closeSub(t *testing.T, sub broker.Subscription) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := sub.Close(ctx); err != nil {
		t.Errorf("Subscription.Close: %v", err)
	}
}

func (e *env) send(channel string, msgs ...*message.Message) {
	e.t.Helper()
	if err := e.b.Send(e.ctx(), channel, msgs...); err != nil {
		e.t.Fatalf("Send to %q: %v", channel, err)
	}
}

// keyed returns a message with the given partition key and a payload
// naming key and sequence number.
func keyed(key string, seq int) *message.Message {
	return message.NewBuilder([]byte(fmt.Sprintf("%s/%d", key, seq))).
		WithPartitionKey(key).
		WithHeader("seq", fmt.Sprint(seq)).
		Build()
}

// eventually polls cond until it holds or the timeout passes.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(e.timeout())
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s", e.timeout(), what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// never checks that cond stays false for d.
func (e *env) never(what string, d time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			e.t.Fatalf("unexpectedly: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fastRetry is the policy tests use so that retries do not slow them down.
var fastRetry = broker.WithBackoff(broker.ConstantBackoff(5 * time.Millisecond))
