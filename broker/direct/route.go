package direct

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/internal/sharding"
)

// Metadata keys of a subscription instance's registration.
const (
	metaChannel    = "courier.channel"
	metaSubscriber = "courier.subscriber"
	metaDelivery   = "courier.delivery"
	metaShards     = "courier.shards"
)

// servicePrefix starts the discovery service name of a channel.
const servicePrefix = "courier-direct."

// serviceName is the discovery service a channel's subscription
// instances register under: the prefix and the channel, or, for a channel
// too long for a service name, its start and a hash of it (the instances'
// metadata names the channel, so that a collision cannot mix channels).
func serviceName(channel string) string {
	const max = 253
	if len(servicePrefix)+len(channel) <= max {
		return servicePrefix + channel
	}
	sum := sha256.Sum256([]byte(channel))
	h := hex.EncodeToString(sum[:8])
	return servicePrefix + channel[:max-len(servicePrefix)-len(h)-1] + "-" + h
}

// shardOf maps a partition key to one of n shards with FNV-1a.
func shardOf(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// member is one live instance of a subscriber id on a channel.
type member struct {
	id      string // the instance id, also its registration's ID
	address string
}

// group is a subscriber id's instances on a channel, as a sender sees them.
type group struct {
	subscriber string
	delivery   broker.DeliveryMode
	shards     int
	members    []member // sorted by id
	owners     []string // shard -> instance id, for ordered delivery
}

// view is a channel's subscriber ids, from one instance set.
type view struct {
	insts  []discovery.Instance // the resolver's set it was made from
	groups []*group             // sorted by subscriber id
}

// sameSet reports whether insts is the set v was made from: the resolver
// hands out the same slice until the set changes.
func (v *view) sameSet(insts []discovery.Instance) bool {
	return len(v.insts) == len(insts) && (len(insts) == 0 || &v.insts[0] == &insts[0])
}

// newView groups a channel's instances by subscriber id, skipping the
// unhealthy ones and those registered for another channel under the same
// service name.
func newView(channel string, insts []discovery.Instance) *view {
	v := &view{insts: insts}
	by := map[string]*group{}
	for _, in := range insts {
		md := in.Metadata
		if !in.Healthy() || md[metaChannel] != channel || md[metaSubscriber] == "" {
			continue
		}
		g := by[md[metaSubscriber]]
		if g == nil {
			g = &group{subscriber: md[metaSubscriber], shards: DefaultShards}
			if n, err := strconv.Atoi(md[metaShards]); err == nil && n >= 1 && n <= maxShards {
				g.shards = n
			}
			if md[metaDelivery] == broker.DeliveryConcurrent.String() {
				g.delivery = broker.DeliveryConcurrent
			}
			by[g.subscriber] = g
			v.groups = append(v.groups, g)
		}
		g.members = append(g.members, member{id: in.ID, address: in.Address})
	}
	slices.SortFunc(v.groups, func(a, b *group) int { return cmpString(a.subscriber, b.subscriber) })
	for _, g := range v.groups {
		slices.SortFunc(g.members, func(a, b member) int { return cmpString(a.id, b.id) })
		if g.delivery == broker.DeliveryOrdered {
			g.owners = sharding.Assign(ids(g.members, nil), g.shards)
		}
	}
	return v
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ids returns the ids of members not in excluded.
func ids(members []member, excluded map[string]bool) []string {
	out := make([]string, 0, len(members))
	for _, m := range members {
		if !excluded[m.id] {
			out = append(out, m.id)
		}
	}
	return out
}

// find returns the member with id.
func (g *group) find(id string) (member, bool) {
	i, ok := slices.BinarySearchFunc(g.members, id, func(m member, id string) int { return cmpString(m.id, id) })
	if !ok {
		return member{}, false
	}
	return g.members[i], true
}

// owner returns the instance that takes shard in ordered delivery, among
// the members not excluded: the sticky assignment of every member, or,
// when some are excluded (they refused or could not be reached during
// this Send), the assignment of the others.
func (g *group) owner(shard int, excluded map[string]bool) (member, bool) {
	if len(excluded) == 0 {
		return g.find(g.owners[shard])
	}
	live := ids(g.members, excluded)
	if len(live) == 0 {
		return member{}, false
	}
	return g.find(sharding.Assign(live, g.shards)[shard])
}
