package brokertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/deadletter"
	"github.com/courier-go/courier/message"
)

// testDeadLetterBrowser checks that the adapter keeps the dead letters of
// a subscription and browses, replays and purges them through
// broker.DeadLetterBrowser (with package deadletter): browsing neither
// consumes nor reorders them, a replayed letter reaches its channel with a
// new ID and a link to the original, and what is removed is gone. The
// letters share a partition key, so that they are kept in one partition in
// the order they failed, and are removed oldest first: what every
// adapter's removal can do.
func testDeadLetterBrowser(t *testing.T, e *env) {
	b, ok := e.b.(broker.DeadLetterBrowser)
	if !ok && e.suite.Features.NoDeadLetterStore {
		t.Skip("the broker keeps no dead letters to browse (Features.NoDeadLetterStore)")
	}
	if !ok {
		t.Fatalf("%T does not implement broker.DeadLetterBrowser", e.b)
	}
	ch, dlc, id := e.name("orders"), e.name("orders-dead"), e.name("sub")

	var (
		mu      sync.Mutex
		healed  bool
		handled []*message.Message
	)
	e.subscribe(id, []string{ch}, func(_ context.Context, m *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if !healed && m.Headers.Get("fail") != "" {
			return broker.Permanent(fmt.Errorf("refused: %s", m.Headers.Get("fail")))
		}
		handled = append(handled, m)
		return nil
	}, broker.WithDeadLetterChannel(dlc), broker.WithMaxAttempts(1))

	var sent []*message.Message
	for i, reason := range []string{"alpha", "bravo", "charlie"} {
		m := message.NewBuilder(fmt.Appendf(nil, "payload %d", i)).WithPartitionKey("k").
			WithHeader("fail", reason).WithHeader("kept", "yes").Build()
		sent = append(sent, m)
	}
	e.send(ch, sent...)

	list := func(f deadletter.Filter) []deadletter.Letter {
		t.Helper()
		ls, err := deadletter.List(e.ctx(), b, dlc, f)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		return ls
	}
	var letters []deadletter.Letter
	deadline := time.Now().Add(e.timeout())
	for {
		if letters = list(deadletter.Filter{}); len(letters) >= len(sent) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ids := func(ls []deadletter.Letter) []string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = l.ID
		}
		return out
	}
	want := []string{sent[0].ID, sent[1].ID, sent[2].ID}
	if got := ids(letters); !slices.Equal(got, want) {
		t.Fatalf("dead letters = %v, want %v in that order", got, want)
	}
	for i, l := range letters {
		if l.Channel != ch || l.SubscriberID != id || l.Attempts != 1 || l.Envelope != broker.EnvelopeOriginal ||
			!strings.Contains(l.Reason, "refused: "+sent[i].Headers.Get("fail")) || time.Since(l.Time) > time.Minute ||
			string(l.Message.Payload) != string(sent[i].Payload) || l.Message.Headers.Get("kept") != "yes" {
			t.Errorf("letter %d = %+v (payload %q)", i, l, l.Message.Payload)
		}
	}
	// Browsing again finds the same letters: nothing was consumed.
	if got := ids(list(deadletter.Filter{})); !slices.Equal(got, want) {
		t.Fatalf("browsing again: %v, want %v", got, want)
	}
	if got := ids(list(deadletter.Filter{Reason: "bravo"})); !slices.Equal(got, want[1:2]) {
		t.Errorf("List(reason bravo) = %v, want %v", got, want[1:2])
	}
	if got := list(deadletter.Filter{Channel: "elsewhere"}); len(got) != 0 {
		t.Errorf("List(channel elsewhere) = %v, want none", ids(got))
	}
	if _, err := deadletter.Replay(e.ctx(), dlcBroker{e.b, b}, dlc, deadletter.Filter{}); !errors.Is(err, deadletter.ErrNoFilter) {
		t.Errorf("Replay with an empty filter: %v, want ErrNoFilter", err)
	}

	mu.Lock()
	healed = true
	mu.Unlock()
	replay := func(f deadletter.Filter, id string) {
		t.Helper()
		res, err := deadletter.Replay(e.ctx(), dlcBroker{e.b, b}, dlc, f)
		if err != nil {
			t.Fatalf("Replay(%+v): %v", f, err)
		}
		if len(res.Replayed) != 1 || res.Replayed[0].ID != id || res.Replayed[0].Channel != ch || res.Replayed[0].NewID == id || res.Removed != 1 {
			t.Fatalf("Replay(%+v) = %+v, want %s replayed to %q with a new ID and removed", f, res, id, ch)
		}
		var got *message.Message
		e.eventually("the replayed message", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range handled {
				if m.ID == res.Replayed[0].NewID {
					got = m
				}
			}
			return got != nil
		})
		if got.Headers.Get(message.HeaderReplayOf) != id || got.Headers.Get("kept") != "yes" || got.PartitionKey() != "k" ||
			got.Headers.Get(message.HeaderDeadLetterReason) != "" {
			t.Errorf("replayed message headers = %v, want %s=%s, the original's, no dead-letter headers", got.Headers, message.HeaderReplayOf, id)
		}
	}
	replay(deadletter.Filter{IDs: []string{want[0]}}, want[0])
	replay(deadletter.Filter{Reason: "bravo"}, want[1])
	if got := ids(list(deadletter.Filter{})); !slices.Equal(got, want[2:]) {
		t.Fatalf("after two replays: %v, want %v", got, want[2:])
	}
	if _, err := deadletter.Show(e.ctx(), b, dlc, want[0]); !errors.Is(err, deadletter.ErrNotFound) {
		t.Errorf("Show(a replayed letter): %v, want ErrNotFound", err)
	}
	if l, err := deadletter.Show(e.ctx(), b, dlc, want[2]); err != nil || l.ID != want[2] {
		t.Errorf("Show(%s) = %+v, %v", want[2], l, err)
	}
	n, err := deadletter.Purge(e.ctx(), b, dlc, deadletter.Filter{All: true})
	if err != nil || n != 1 {
		t.Fatalf("Purge(all) = %d, %v; want 1", n, err)
	}
	if got := list(deadletter.Filter{}); len(got) != 0 {
		t.Fatalf("after Purge: %v, want none", ids(got))
	}
	// A channel that was never used keeps nothing.
	if got, err := deadletter.List(e.ctx(), b, e.name("never-used"), deadletter.Filter{}); err != nil || len(got) != 0 {
		t.Errorf("List(an unused channel) = %v, %v; want none", ids(got), err)
	}
}

// dlcBroker is the test's broker as deadletter.Replay takes it.
type dlcBroker struct {
	broker.Producer
	broker.DeadLetterBrowser
}
