package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/courier-go/courier/internal/sharding"
)

// group is one instance's part in a subscriber id on one channel: its
// membership key, its view of the other instances and a worker per shard.
type group struct {
	s       *subscription
	channel string
	stream  string
	prefix  string // of the membership keys of this subscriber id and channel
	key     string // this instance's membership key
	value   []byte
	workers []*worker

	watcher   jetstream.MessagesContext // nil while not watching
	watchCons jetstream.Consumer        // the watcher's ordered consumer
	watchWG   sync.WaitGroup

	mu      sync.Mutex
	members map[string]int // instance ids seen in the bucket -> the assignment version they follow
	owned   []bool         // per shard: whether this instance should pull it
}

// memberInfo is the value of a membership key, for operators.
type memberInfo struct {
	Subscriber string    `json:"subscriber"`
	Channel    string    `json:"channel"`
	Instance   string    `json:"instance"`
	Host       string    `json:"host,omitempty"`
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	// Assign is the version of the shard assignment the instance
	// follows (sharding.Version); instances of Courier before it had
	// none and deal the shards out round robin.
	Assign int `json:"assign,omitempty"`
}

// assignVersion reads the assignment version from a membership value; a
// value it cannot read counts as version 0, round robin.
func assignVersion(value []byte) int {
	var info memberInfo
	if json.Unmarshal(value, &info) != nil {
		return 0
	}
	return info.Assign
}

// join registers the instance and starts watching the membership; it
// returns once the instance has seen the members of the moment.
func (g *group) join(ctx context.Context) error {
	host, _ := os.Hostname()
	g.value, _ = json.Marshal(memberInfo{
		Subscriber: g.s.cfg.SubscriberID, Channel: g.channel, Instance: g.s.id,
		Host: host, PID: os.Getpid(), Started: time.Now().UTC(), Assign: sharding.Version,
	})
	if err := g.put(ctx); err != nil {
		return fmt.Errorf("channel %q: joining the membership: %w", g.channel, err)
	}
	return g.startWatch(ctx)
}

// put writes the instance's membership key, refreshing its TTL.
func (g *group) put(ctx context.Context) error {
	_, err := g.s.members.kv.Put(ctx, g.key, g.value)
	return err
}

// startWatch starts following the membership keys and waits until the
// current ones are known. It reads the bucket's stream with an ordered
// consumer, which survives reconnections and server restarts by itself.
func (g *group) startWatch(ctx context.Context) error {
	m := g.s.members
	cons, err := g.s.b.js.OrderedConsumer(ctx, m.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{m.subjects + g.prefix + "*"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
	})
	if err != nil {
		return fmt.Errorf("channel %q: watching the membership: %w", g.channel, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("channel %q: watching the membership: %w", g.channel, err)
	}
	initial := cons.CachedInfo().NumPending
	g.watcher, g.watchCons = it, cons
	ready := make(chan struct{})
	g.watchWG.Add(1)
	go g.watch(it, initial, ready)
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("channel %q: reading the membership: %w", g.channel, ctx.Err())
	}
}

// stopWatch stops the watcher, waits for its goroutine and deletes its
// consumer rather than leave it to expire.
func (g *group) stopWatch(ctx context.Context) {
	if g.watcher == nil {
		return
	}
	g.watcher.Stop()
	g.watchWG.Wait()
	if info := g.watchCons.CachedInfo(); info != nil && !g.s.b.nc.IsClosed() {
		_ = g.s.b.js.DeleteConsumer(ctx, g.s.members.stream, info.Name)
	}
	g.watcher, g.watchCons = nil, nil
}

// watch follows the membership keys until the watcher stops. It builds
// the view of the members from the initial values (the last entry of each
// key, initial of them), installs it when they end, and then applies each
// change.
func (g *group) watch(it jetstream.MessagesContext, initial uint64, ready chan struct{}) {
	defer g.watchWG.Done()
	view := make(map[string]int)
	install := func() {
		g.mu.Lock()
		g.members = view
		g.mu.Unlock()
		view = nil
		g.reassign()
		close(ready)
	}
	if initial == 0 {
		install()
	}
	prefix := g.s.members.subjects + g.prefix
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if !g.s.stopping() {
				g.s.log(slog.LevelWarn, "watching the membership", slog.String("channel", g.channel), slog.Any("error", err))
			}
			continue
		}
		subject := msg.Subject()
		if len(subject) <= len(prefix) {
			continue
		}
		id := subject[len(prefix):]
		put := isPut(msg)
		if view != nil {
			if put {
				view[id] = assignVersion(msg.Data())
			} else {
				delete(view, id)
			}
			if meta, err := msg.Metadata(); err != nil || meta.NumPending == 0 {
				install()
			}
			continue
		}
		g.mu.Lock()
		if put {
			g.members[id] = assignVersion(msg.Data())
		} else {
			delete(g.members, id)
		}
		g.mu.Unlock()
		g.reassign()
	}
}

// isPut tells a key-value entry that sets a key from one that removes it:
// a delete, a purge, or the marker left when the key expired.
func isPut(msg jetstream.Msg) bool {
	h := msg.Headers()
	return h.Get("KV-Operation") == "" && h.Get(jetstream.MarkerReasonHeader) == ""
}

// reassign recomputes which shards this instance owns from its view of
// the members, and wakes the workers whose ownership changed. Every
// instance that sees the same members computes the same assignment: the
// sticky one every adapter shares (sharding.Assign), which moves few
// shards when an instance joins or leaves, or, while any member is of a
// Courier from before it, the round robin of the members sorted by
// instance id that such instances compute, so that during a rolling
// upgrade every shard still has exactly one owner.
func (g *group) reassign() {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := make([]string, 0, len(g.members))
	sticky := true
	for id, version := range g.members {
		ids = append(ids, id)
		sticky = sticky && version >= sharding.Version
	}
	slices.Sort(ids)
	me, present := slices.BinarySearch(ids, g.s.id)
	present = present && !g.s.stopping()
	var owners []string
	if sticky {
		owners = sharding.Assign(ids, len(g.owned))
	}
	for shard := range g.owned {
		want := present && shard%len(ids) == me
		if sticky {
			want = present && owners[shard] == g.s.id
		}
		if want != g.owned[shard] {
			g.owned[shard] = want
			g.workers[shard].notify()
		}
	}
}

// owns reports whether this instance should pull the shard now.
func (g *group) owns(shard int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.owned[shard]
}

// leave deletes the instance's membership key, so that the others take
// over its shards, and stops the watcher.
func (g *group) leave(ctx context.Context) {
	if g.value != nil {
		if err := g.s.members.kv.Delete(ctx, g.key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			g.s.log(slog.LevelWarn, "leaving the membership failed; the other instances take over the shards when the key expires",
				slog.String("channel", g.channel), slog.Duration("ttl", g.s.members.ttl), slog.Any("error", err))
		}
	}
	g.stopWatch(ctx)
}
