// Package sharding assigns the shards of a channel to the instances of a
// subscriber id, for the adapters that do it themselves (the in-memory
// broker and NATS JetStream; Kafka's group protocol and RabbitMQ's
// single-active consumers assign their own).
//
// Assign is a function of the set of instances alone, so that instances
// that see the same members compute the same assignment without talking to
// each other, and it is sticky: when an instance joins or leaves, few
// shards change owner besides those that must. It is balanced rendezvous
// hashing: each (shard, instance) pair has a pseudo-random score; the
// pairs are taken from the highest score down, and a shard goes to the
// first instance of its pairs that still has room, each instance having
// room for shards/n shards, or one more. An instance that joins takes the
// shards it scores highest on; an instance that leaves gives its shards to
// those that score next. Round robin, by contrast, moves most shards on
// every change (10 of 16 when a fourth instance joins three); this moves
// 4 to 6 of them.
//
// The scores are part of the protocol between instances: every version
// that shares a membership must compute the same ones. Changing Score or
// Assign needs a new version number, negotiated as natsjs does.
package sharding

import (
	"cmp"
	"slices"
	"strconv"
)

// Version identifies this assignment, for adapters whose instances must
// agree on it (a membership record can carry it).
const Version = 2

// Score is the pseudo-random score of instance for shard, from FNV-1a of
// the instance id and the shard number, finished with SplitMix64's mixer
// so that nearby shard numbers give unrelated scores.
func Score(instance string, shard int) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(instance); i++ {
		h = (h ^ uint64(instance[i])) * prime
	}
	h = (h ^ 0) * prime // separator
	for _, c := range []byte(strconv.Itoa(shard)) {
		h = (h ^ uint64(c)) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Assign returns the owner of each of shards shards among members (the
// instance ids; duplicates count once): owners[i] is the id that owns
// shard i. Every member owns shards/len(members) shards, or one more. With
// no members every owner is "".
func Assign(members []string, shards int) []string {
	owners := make([]string, shards)
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	n := len(ms)
	if n == 0 || shards <= 0 {
		return owners
	}
	// Every member has room for shards/n shards; shards%n of them may take
	// one more, whichever reach for it first in score order, so that the
	// extra shards go where they score highest rather than to members
	// chosen beforehand, which would move shards for nothing when the
	// members change.
	room := make(map[string]int, n)
	for _, m := range ms {
		room[m] = shards / n
	}
	extras := shards % n
	tookExtra := make(map[string]bool, n)
	type pair struct {
		shard int
		m     string
		score uint64
	}
	pairs := make([]pair, 0, shards*n)
	for s := range shards {
		for _, m := range ms {
			pairs = append(pairs, pair{s, m, Score(m, s)})
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		if c := cmp.Compare(a.shard, b.shard); c != 0 {
			return c
		}
		return cmp.Compare(a.m, b.m)
	})
	left := shards
	for _, p := range pairs {
		if owners[p.shard] != "" {
			continue
		}
		switch {
		case room[p.m] > 0:
			room[p.m]--
		case extras > 0 && !tookExtra[p.m]:
			extras--
			tookExtra[p.m] = true
		default:
			continue
		}
		owners[p.shard] = p.m
		if left--; left == 0 {
			break
		}
	}
	return owners
}
