// Command quickstart shows Courier's messaging core on the in-memory
// broker: publish-subscribe between services, competing instances of one
// service on a sharded channel with per-order ordering, an instance leaving
// mid-stream without losing or reordering anything, and a poison message
// moved to a dead-letter channel while the rest flows on.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/message"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

const (
	orders  = 20 // orders in the scenario
	events  = 5  // events per order
	poison  = "order-13"
	channel = "order-events"
)

func run(ctx context.Context, out io.Writer) error {
	start := time.Now()
	trace := func(format string, args ...any) {
		fmt.Fprintf(out, "%7.1fms  %s\n", float64(time.Since(start).Microseconds())/1000, fmt.Sprintf(format, args...))
	}
	b, err := memory.New(memory.WithShards(8))
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	quiet := broker.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

	// The kitchen service runs three instances that share the shards of
	// the order-events channel; the accounting service is a second
	// subscriber id and sees every event too.
	kitchen := newLedger()
	var kitchenSubs []broker.Subscription
	for i := range 3 {
		sub, err := b.Subscribe(ctx, "kitchen-service", []string{channel}, kitchen.handler(fmt.Sprint("kitchen-", i+1)),
			quiet, broker.WithMaxAttempts(3), broker.WithBackoff(broker.ConstantBackoff(time.Millisecond)))
		if err != nil {
			return fmt.Errorf("subscribe kitchen: %w", err)
		}
		kitchenSubs = append(kitchenSubs, sub)
	}
	trace("kitchen-service: 3 instances subscribed to %q", channel)
	accounting := newLedger()
	acct, err := b.Subscribe(ctx, "accounting-service", []string{channel}, accounting.handler("accounting"), quiet)
	if err != nil {
		return fmt.Errorf("subscribe accounting: %w", err)
	}
	defer acct.Close(context.Background())
	trace("accounting-service: 1 instance subscribed to %q", channel)

	deadLetters := make(chan *message.Message, 1)
	ops, err := b.Subscribe(ctx, "ops", []string{"kitchen-service" + broker.DeadLetterSuffix}, broker.HandlerFunc(
		func(_ context.Context, m *message.Message) error { deadLetters <- m; return nil }))
	if err != nil {
		return fmt.Errorf("subscribe ops: %w", err)
	}
	defer ops.Close(context.Background())

	// The order service publishes five events per order, keyed by order id.
	for seq := range events {
		var batch []*message.Message
		for o := range orders {
			batch = append(batch, message.NewBuilder([]byte(fmt.Sprintf("event %d of order-%02d", seq, o))).
				WithPartitionKey(fmt.Sprintf("order-%02d", o)).
				WithHeader(message.HeaderEventType, eventTypes[seq]).
				WithHeader("seq", strconv.Itoa(seq)).
				Build())
		}
		if err := b.Send(ctx, channel, batch...); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		trace("order-service: sent %d %s events", len(batch), eventTypes[seq])
		if seq == 2 {
			// One kitchen instance stops mid-stream; its shards move
			// to the other two without loss or reordering.
			if err := kitchenSubs[0].Close(ctx); err != nil {
				return err
			}
			kitchenSubs = kitchenSubs[1:]
			trace("kitchen-1: closed; its shards move to kitchen-2 and kitchen-3")
		}
	}

	want := orders*events - 1 // the poison message is dead-lettered
	if err := waitFor(ctx, func() bool { return kitchen.count() == want && accounting.count() == orders*events }); err != nil {
		return fmt.Errorf("waiting for deliveries (kitchen %d/%d, accounting %d/%d): %w", kitchen.count(), want, accounting.count(), orders*events, err)
	}
	select {
	case m := <-deadLetters:
		trace("ops: dead letter %s from %s: %q after %s attempts",
			m.PartitionKey(), m.Header(message.HeaderDeadLetterSubscriberID), m.Header(message.HeaderDeadLetterReason), m.Header(message.HeaderDeadLetterAttempts))
	case <-ctx.Done():
		return fmt.Errorf("no dead letter: %w", ctx.Err())
	}
	for _, s := range kitchenSubs {
		if err := s.Close(ctx); err != nil {
			return err
		}
	}

	fmt.Fprintln(out)
	fmt.Fprintf(out, "kitchen-service handled %d events: %s\n", kitchen.count(), kitchen.byInstance())
	fmt.Fprintf(out, "accounting-service handled %d events (every event: publish-subscribe)\n", accounting.count())
	if problems := append(kitchen.orderProblems(), accounting.orderProblems()...); len(problems) > 0 {
		return fmt.Errorf("per-order ordering broken: %s", strings.Join(problems, "; "))
	}
	fmt.Fprintf(out, "per-order ordering held for all %d orders in both services\n", orders)
	fmt.Fprintf(out, "done in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

var eventTypes = []string{"OrderCreated", "OrderApproved", "TicketAccepted", "OrderPickedUp", "OrderDelivered"}

// ledger records what a service handled, per instance and per order.
type ledger struct {
	mu      sync.Mutex
	total   int
	perInst map[string]int
	lastSeq map[string]int
	errs    []string
}

func newLedger() *ledger {
	return &ledger{perInst: map[string]int{}, lastSeq: map[string]int{}}
}

func (l *ledger) handler(instance string) broker.HandlerFunc {
	return func(_ context.Context, m *message.Message) error {
		if m.PartitionKey() == poison && m.Header("seq") == "3" && strings.HasPrefix(instance, "kitchen") {
			return errors.New("kitchen cannot parse the pick-up slot")
		}
		seq, _ := strconv.Atoi(m.Header("seq"))
		l.mu.Lock()
		defer l.mu.Unlock()
		key := m.PartitionKey()
		if last, ok := l.lastSeq[key]; ok && seq <= last {
			l.errs = append(l.errs, fmt.Sprintf("%s: seq %d after %d", key, seq, last))
		}
		l.lastSeq[key] = seq
		l.total++
		l.perInst[instance]++
		return nil
	}
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

func (l *ledger) byInstance() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for inst, n := range l.perInst {
		parts = append(parts, fmt.Sprintf("%s=%d", inst, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func (l *ledger) orderProblems() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

func waitFor(ctx context.Context, cond func() bool) error {
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}
