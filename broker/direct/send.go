package direct

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/adapter"
	"github.com/courier-go/courier/message"
)

// Send delivers msgs to one instance of every subscriber id registered
// for the channel and returns once each of those instances has queued
// each message: a nil error means live receivers hold every message. A
// message with a partition key goes to the instance that owns the key's
// shard; one without, to any. An instance that refuses (it is closing) or
// cannot be reached is skipped for another of its subscriber id; when
// none is left, Send waits for one, within ctx, and fails with an error
// wrapping ErrNoLiveInstance. A channel that no instance is registered
// for takes the message nowhere and Send returns nil, unless the broker
// has WithRequireSubscribers.
func (b *Broker) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	return b.send(ctx, channel, b.requireSubscribers, msgs)
}

func (b *Broker) send(ctx context.Context, channel string, require bool, msgs []*message.Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("direct broker: send to %q: %w", channel, err)
	}
	if b.subs.Closing() {
		return fmt.Errorf("direct broker: send to %q: %w", channel, broker.ErrClosed)
	}
	if err := adapter.PrepareSend(channel, msgs, b.limits); err != nil {
		return fmt.Errorf("direct broker: %w", err)
	}
	date := message.FormatDate(time.Now())
	wire := make([]*message.Message, len(msgs))
	for i, m := range msgs {
		h := make(message.Headers, len(m.Headers)+2)
		maps.Copy(h, m.Headers)
		delete(h, message.HeaderID)
		h[message.HeaderDestination] = channel
		if _, ok := h[message.HeaderDate]; !ok {
			h[message.HeaderDate] = date
		}
		wire[i] = &message.Message{ID: m.ID, Headers: h, Payload: m.Payload}
	}
	return b.deliver(ctx, channel, require, wire)
}

// pending is what is left to deliver to one subscriber id.
type pending struct {
	subscriber  string
	msgs        []int // indexes into the Send's messages, in order
	unreachable bool  // an instance could not be reached: it may have crashed
	delivered   bool
}

// call is one deliver request waiting for its answer.
type call struct {
	p    *pending
	msg  int
	to   member
	resp <-chan response
	err  error
}

// deliver sends msgs, ready for the wire, to the channel's subscriber ids.
func (b *Broker) deliver(ctx context.Context, channel string, require bool, msgs []*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	v, err := b.view(ctx, channel)
	if err != nil {
		return err
	}
	if len(v.groups) == 0 {
		if require {
			return fmt.Errorf("direct broker: send to %q: %w", channel, ErrNoSubscribers)
		}
		return nil
	}
	all := make([]int, len(msgs))
	for i := range all {
		all[i] = i
	}
	var left []*pending
	for _, g := range v.groups {
		left = append(left, &pending{subscriber: g.subscriber, msgs: all})
	}
	// keyless messages keep one shard for the whole Send, per subscriber id
	keyless := b.next.Add(1)
	excluded := map[string]bool{} // instances that refused or failed in this Send
	delivered := false
	for attempt := 1; ; attempt++ {
		var calls []call
		var stuck []*pending // subscriber ids without a live instance now
		for _, p := range left {
			g := v.find(p.subscriber)
			if g == nil {
				if p.unreachable {
					return fmt.Errorf("direct broker: send to %q: subscriber %q: its instances could not be reached and left the registry (a crash?): %d messages not delivered: %w",
						channel, p.subscriber, len(p.msgs), ErrNoLiveInstance)
				}
				continue // its last instance closed: nobody to deliver to
			}
			for k, i := range p.msgs {
				shard := int(keyless % uint64(g.shards))
				if key := msgs[i].PartitionKey(); key != "" {
					shard = shardOf(key, g.shards)
				}
				to, ok := b.pick(g, shard, excluded)
				if !ok {
					stuck = append(stuck, &pending{subscriber: p.subscriber, msgs: p.msgs[k:], unreachable: p.unreachable})
					break
				}
				if g.delivery == broker.DeliveryOrdered {
					if err := b.moveShard(ctx, channel, g.subscriber, shard, to); err != nil {
						return err
					}
				}
				c := call{p: p, msg: i, to: to}
				c.resp, c.err = b.request(ctx, to, func(seq uint64) []byte {
					return appendDeliver(nil, seq, to.id, channel, shard, msgs[i])
				})
				calls = append(calls, c)
			}
		}
		retry := map[*pending]*pending{}
		var again []*pending
		for _, c := range calls {
			r, err := c.wait(ctx)
			if err != nil {
				return fmt.Errorf("direct broker: send to %q: subscriber %q: %w", channel, c.p.subscriber, err)
			}
			switch r.status {
			case statusOK:
				delivered = true
				continue
			case statusRefused:
				return fmt.Errorf("direct broker: send to %q: instance %s of %q refused the frame: %s", channel, c.to.id, c.p.subscriber, r.text)
			case statusUnreachable:
				b.log.Debug("courier: direct broker: receiver unreachable; trying another", "channel", channel,
					"subscriber", c.p.subscriber, "instance", c.to.id, "address", c.to.address, "error", r.text)
			}
			excluded[c.to.id] = true
			n := retry[c.p]
			if n == nil {
				n = &pending{subscriber: c.p.subscriber, unreachable: c.p.unreachable}
				retry[c.p] = n
				again = append(again, n)
			}
			n.unreachable = n.unreachable || r.status == statusUnreachable
			n.msgs = append(n.msgs, c.msg)
		}
		left = append(again, stuck...)
		if len(left) == 0 {
			if require && !delivered {
				return fmt.Errorf("direct broker: send to %q: %w", channel, ErrNoSubscribers)
			}
			return nil
		}
		if len(stuck) > 0 {
			// Every instance of some subscriber id failed: wait, then try
			// them all again with the registry's latest view.
			wait := min(b.retryWait, time.Duration(attempt)*10*time.Millisecond)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				subs := make([]string, 0, len(stuck))
				for _, p := range stuck {
					subs = append(subs, p.subscriber)
				}
				return fmt.Errorf("direct broker: send to %q: subscribers %v: %w (%w)", channel, slices.Compact(subs), ErrNoLiveInstance, ctx.Err())
			}
			clear(excluded)
		}
		if v, err = b.view(ctx, channel); err != nil {
			return err
		}
	}
}

// wait returns the answer to c, or ctx's error.
func (c call) wait(ctx context.Context) (response, error) {
	if c.err != nil {
		if ctx.Err() != nil {
			return response{}, ctx.Err()
		}
		return response{status: statusUnreachable, text: c.err.Error()}, nil
	}
	select {
	case r := <-c.resp:
		return r, nil
	case <-ctx.Done():
		return response{}, ctx.Err()
	}
}

// find returns the subscriber id's group in the view.
func (v *view) find(subscriber string) *group {
	i, ok := slices.BinarySearchFunc(v.groups, subscriber, func(g *group, s string) int { return cmpString(g.subscriber, s) })
	if !ok {
		return nil
	}
	return v.groups[i]
}

// pick chooses the instance of g that takes a message of shard: its
// owner in ordered delivery, the next in turn in concurrent delivery.
func (b *Broker) pick(g *group, shard int, excluded map[string]bool) (member, bool) {
	if g.delivery == broker.DeliveryOrdered {
		return g.owner(shard, excluded)
	}
	for range len(g.members) {
		m := g.members[b.next.Add(1)%uint64(len(g.members))]
		if !excluded[m.id] {
			return m, true
		}
	}
	return member{}, false
}

// moveShard records that the subscriber id's shard of channel goes to
// to. If it went to another instance before, it first waits until that
// instance has handled what it holds of the shard, so that the shard's
// messages stay in order across the move; an instance that is gone or
// unreachable holds nothing any more.
func (b *Broker) moveShard(ctx context.Context, channel, subscriber string, shard int, to member) error {
	k := lastKey{subscriber: subscriber, channel: channel, shard: shard}
	b.mu.Lock()
	prev, ok := b.last[k]
	b.last[k] = to
	b.mu.Unlock()
	if !ok || prev.id == to.id {
		return nil
	}
	resp, err := b.request(ctx, prev, func(seq uint64) []byte { return appendFlush(nil, seq, prev.id, channel, shard) })
	if _, err := (call{resp: resp, err: err}).wait(ctx); err != nil {
		return fmt.Errorf("direct broker: send to %q: moving shard %d of %q from instance %s: %w", channel, shard, subscriber, prev.id, err)
	}
	return nil
}

// request sends one frame to an instance's receiver.
func (b *Broker) request(ctx context.Context, to member, build func(seq uint64) []byte) (<-chan response, error) {
	p, err := b.peer(to.address)
	if err != nil {
		return nil, err
	}
	return p.request(ctx, build)
}
