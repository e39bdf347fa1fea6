package brokertest

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// ownership records, round by round, which instance handled each shard.
type ownership struct {
	mu     sync.Mutex
	rounds map[int]map[int]int // round -> shard -> instance
	counts map[int]int         // round -> messages handled
}

func (o *ownership) handler(instance int) broker.HandlerFunc {
	return func(ctx context.Context, m *message.Message) error {
		info, _ := broker.Delivery(ctx)
		round, _ := strconv.Atoi(string(m.Payload))
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.rounds[round] == nil {
			o.rounds[round] = map[int]int{}
		}
		o.rounds[round][info.Shard] = instance
		o.counts[round]++
		return nil
	}
}

// settle sends rounds of one message per key until two rounds in a row
// find each shard with the same owner and accept approves the owners; it
// returns them.
func (o *ownership) settle(e *env, ch string, keys int, next *int, what string, accept func(map[int]int) bool) map[int]int {
	e.t.Helper()
	deadline := time.Now().Add(3 * e.timeout())
	var last map[int]int
	for {
		round := *next
		*next++
		msgs := make([]*message.Message, keys)
		for k := range msgs {
			msgs[k] = message.NewBuilder([]byte(strconv.Itoa(round))).WithPartitionKey(fmt.Sprintf("key-%d", k)).Build()
		}
		e.send(ch, msgs...)
		e.eventually(fmt.Sprintf("round %d (%s)", round, what), func() bool {
			o.mu.Lock()
			defer o.mu.Unlock()
			return o.counts[round] >= keys
		})
		o.mu.Lock()
		owners := maps.Clone(o.rounds[round])
		o.mu.Unlock()
		if last != nil && maps.Equal(owners, last) && accept(owners) {
			return owners
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: the shards' owners did not settle: %v", what, owners)
		}
		last = owners
		time.Sleep(200 * time.Millisecond) // let a rebalance in progress finish
	}
}

// testShardMoves counts the shards that change owner when a fourth
// instance joins three and when one of them leaves. The newcomer must take
// its share, and a leaver's shards must move; other moves disturb shards
// for nothing (each move is a pause and, on some brokers, redeliveries).
// A sticky assignment needs few of them; round robin moves most shards.
func testShardMoves(t *testing.T, e *env) {
	ch, id := e.name("ch"), e.name("sub")
	keys := 256
	if testing.Short() {
		keys = 128
	}
	o := &ownership{rounds: map[int]map[int]int{}, counts: map[int]int{}}
	round := 0
	subs := make([]broker.Subscription, 4)
	for i := range 3 {
		subs[i] = e.subscribe(id, []string{ch}, o.handler(i), fastRetry)
	}
	everyone := func(n int) func(map[int]int) bool {
		return func(owners map[int]int) bool {
			seen := map[int]bool{}
			for _, inst := range owners {
				seen[inst] = true
			}
			return len(seen) == n
		}
	}
	three := o.settle(e, ch, keys, &round, "three instances", everyone(3))
	shards := len(three)
	if shards < 4 {
		t.Skipf("the channel has %d shards: too few to count moves", shards)
	}

	subs[3] = e.subscribe(id, []string{ch}, o.handler(3), fastRetry)
	four := o.settle(e, ch, keys, &round, "a fourth instance joined", everyone(4))
	joinMoves, taken := 0, 0
	for s, inst := range four {
		if three[s] != inst {
			joinMoves++
		}
		if inst == 3 {
			taken++
		}
	}

	closeSub(t, subs[0])
	left := o.settle(e, ch, keys, &round, "the first instance left", func(owners map[int]int) bool {
		for _, inst := range owners {
			if inst == 0 {
				return false
			}
		}
		return everyone(3)(owners)
	})
	leaveMoves, needed := 0, 0
	for s, inst := range left {
		switch {
		case four[s] == 0:
			needed++
		case four[s] != inst:
			leaveMoves++
		}
	}
	t.Logf("%d shards: a fourth instance joining three moved %d (it took %d); the first leaving moved %d besides its own %d",
		shards, joinMoves, taken, leaveMoves, needed)
	if e.suite.Features.BrokerPicksNextOwner {
		return
	}
	if limit := 2 * taken; joinMoves > limit {
		t.Errorf("a fourth instance joining three moved %d shards; it took %d, and more than %d moves means an assignment that is not sticky", joinMoves, taken, limit)
	}
	if limit := (shards + 3) / 4; leaveMoves > limit {
		t.Errorf("an instance leaving moved %d shards besides its own %d; more than %d means an assignment that is not sticky", leaveMoves, needed, limit)
	}
}
