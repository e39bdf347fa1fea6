package sharding

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func ids(r *rand.Rand, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("inst-%016x", r.Uint64())
	}
	return out
}

func moves(a, b []string) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

func TestAssignIsBalancedAndDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, shards := range []int{1, 3, 16, 64, 1024} {
		for n := 1; n <= 9; n++ {
			ms := ids(r, n)
			owners := Assign(ms, shards)
			shuffled := slices.Clone(ms)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if !slices.Equal(owners, Assign(append(shuffled, ms[0]), shards)) {
				t.Fatalf("%d shards, %d members: the order of the members or a duplicate changed the assignment", shards, n)
			}
			load := map[string]int{}
			for s, o := range owners {
				if !slices.Contains(ms, o) {
					t.Fatalf("shard %d owned by %q, not a member", s, o)
				}
				load[o]++
			}
			for _, m := range ms {
				if l := load[m]; l < shards/n || l > shards/n+1 {
					t.Fatalf("%d shards, %d members: %s owns %d", shards, n, m, l)
				}
			}
		}
	}
	if owners := Assign(nil, 4); !slices.Equal(owners, []string{"", "", "", ""}) {
		t.Fatalf("no members: %q", owners)
	}
}

// TestAssignIsSticky: when an instance joins or leaves, the shards that
// move are few beyond those that must: measured over many random member
// sets, against round robin's.
func TestAssignIsSticky(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, shards := range []int{16, 64} {
		var joinExtra, leaveExtra, worst, trials int
		for range 500 {
			n := 1 + r.IntN(7)
			ms := ids(r, n)
			before := Assign(ms, shards)
			joined := append(slices.Clone(ms), ids(r, 1)[0])
			after := Assign(joined, shards)
			// The newcomer must get shards/(n+1) shards: no fewer moves.
			m := moves(before, after)
			must := shards / (n + 1)
			if m > must+shards/4+1 {
				t.Errorf("%d shards, %d members joined by one: %d moves, %d needed", shards, n, m, must)
			}
			joinExtra += m - must
			worst = max(worst, m-must)
			// One leaves: its shards must move, others should not.
			k := r.IntN(len(joined))
			left := slices.Delete(slices.Clone(joined), k, k+1)
			owned := 0
			for _, o := range after {
				if o == joined[k] {
					owned++
				}
			}
			leaveExtra += moves(after, Assign(left, shards)) - owned
			trials++
		}
		t.Logf("%d shards: a join moves %.2f shards more than needed on average (worst %d), a leave %.2f",
			shards, float64(joinExtra)/float64(trials), worst, float64(leaveExtra)/float64(trials))
		if avg := float64(joinExtra) / float64(trials); avg > 1+float64(shards)/32 {
			t.Errorf("%d shards: %.2f extra moves per join on average", shards, avg)
		}
	}
}

// TestFourthInstance is the case the round robin it replaces did worst
// at: 16 shards, three instances joined by a fourth, which needs 4 moves.
func TestFourthInstance(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	hist := map[int]int{}
	for range 1000 {
		ms := ids(r, 3)
		hist[moves(Assign(ms, 16), Assign(append(ms, ids(r, 1)[0]), 16))]++
	}
	t.Logf("moves when a fourth instance joins three on 16 shards: %v (round robin: 10 or more)", hist)
	for m := range hist {
		if m > 8 {
			t.Errorf("%d moves", m)
		}
	}
}

func BenchmarkAssign(b *testing.B) {
	ms := ids(rand.New(rand.NewPCG(7, 8)), 8)
	for b.Loop() {
		Assign(ms, 64)
	}
}
