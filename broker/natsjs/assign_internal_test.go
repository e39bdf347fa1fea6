package natsjs

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/courier-go/courier/internal/sharding"
)

// owned returns the shards instance me owns among members (id ->
// assignment version), as reassign computes them.
func owned(members map[string]int, me string, shards int) []int {
	s := &subscription{id: me, lifecycle: newLifecycle(context.Background())}
	g := &group{s: s, members: members, owned: make([]bool, shards)}
	for i := range shards {
		g.workers = append(g.workers, &worker{g: g, shard: i, wake: make(chan struct{}, 1)})
	}
	g.reassign()
	var out []int
	for i, o := range g.owned {
		if o {
			out = append(out, i)
		}
	}
	return out
}

// TestAssignmentDuringARollingUpgrade: instances follow the sticky
// assignment only when every member says it does; while one of an earlier
// version (no version in its membership value) is there, all deal the
// shards out round robin, as that one does, so that each shard has one
// owner.
func TestAssignmentDuringARollingUpgrade(t *testing.T) {
	const shards = 16
	ids := []string{"a", "b", "c"}
	mixed := map[string]int{"a": sharding.Version, "b": 0, "c": sharding.Version}
	upgraded := map[string]int{"a": sharding.Version, "b": sharding.Version, "c": sharding.Version}
	sticky := sharding.Assign(ids, shards)
	for i, id := range ids {
		var roundRobin, want []int
		for s := range shards {
			if s%len(ids) == i {
				roundRobin = append(roundRobin, s)
			}
			if sticky[s] == id {
				want = append(want, s)
			}
		}
		if got := owned(mixed, id, shards); !slices.Equal(got, roundRobin) {
			t.Errorf("%s among mixed versions owns %v, want the round robin's %v", id, got, roundRobin)
		}
		if got := owned(upgraded, id, shards); !slices.Equal(got, want) {
			t.Errorf("%s among upgraded instances owns %v, want %v", id, got, want)
		}
	}
	// What an earlier version writes, and what this one does.
	old, _ := json.Marshal(map[string]any{"subscriber": "s", "instance": "b", "pid": 1})
	now, _ := json.Marshal(memberInfo{Instance: "a", Assign: sharding.Version})
	if assignVersion(old) != 0 || assignVersion(now) != sharding.Version || assignVersion([]byte("not json")) != 0 {
		t.Error("assignVersion misreads membership values")
	}
}
