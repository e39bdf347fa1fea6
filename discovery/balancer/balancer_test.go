package balancer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/memory"
)

func instances(n int) []discovery.Instance {
	out := make([]discovery.Instance, n)
	for i := range out {
		out[i] = discovery.Instance{Service: "s", ID: fmt.Sprint(i), Address: fmt.Sprintf("127.0.0.1:%d", 8000+i)}
	}
	return out
}

func TestRoundRobinCycles(t *testing.T) {
	b := RoundRobin()
	c := instances(3)
	var got []string
	for range 6 {
		inst, done := b.Pick(c)
		done()
		got = append(got, inst.ID)
	}
	if s := strings.Join(got, ""); s != "012012" {
		t.Fatalf("round robin order %s, want 012012", s)
	}
}

func TestRandomSpreads(t *testing.T) {
	b := Random()
	c := instances(3)
	seen := map[string]int{}
	for range 300 {
		inst, _ := b.Pick(c)
		seen[inst.ID]++
	}
	for _, inst := range c {
		if seen[inst.ID] < 50 {
			t.Fatalf("random picked %s %d times of 300: %v", inst.ID, seen[inst.ID], seen)
		}
	}
}

func TestLeastOutstandingAvoidsBusyInstance(t *testing.T) {
	b := LeastOutstanding()
	c := instances(3)
	slow, doneSlow := b.Pick(c) // stays in flight
	for range 30 {
		inst, done := b.Pick(c)
		if inst.ID == slow.ID {
			t.Fatalf("picked the busy instance %s", slow.ID)
		}
		done()
		done() // idempotent
	}
	if n := b.InFlight(slow); n != 1 {
		t.Fatalf("in flight on %s = %d, want 1", slow.ID, n)
	}
	doneSlow()
	if n := b.InFlight(slow); n != 0 {
		t.Fatalf("in flight after done = %d", n)
	}
}

func TestByName(t *testing.T) {
	for _, n := range []string{NameRoundRobin, NameRandom, NameLeastOutstanding} {
		if _, err := ByName(n); err != nil {
			t.Error(err)
		}
	}
	if _, err := ByName("fastest"); err == nil || !strings.Contains(err.Error(), `"fastest"`) {
		t.Fatalf("unknown balancer: %v", err)
	}
}

func TestEjector(t *testing.T) {
	e, err := NewEjector(2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	e.now = func() time.Time { return now }
	inst := instances(1)[0]
	e.Failure(inst)
	if !e.Available(inst) {
		t.Fatal("ejected after one failure of two")
	}
	e.Failure(inst)
	if e.Available(inst) || len(e.Ejected()) != 1 {
		t.Fatal("not ejected after two failures")
	}
	now = now.Add(time.Minute)
	if !e.Available(inst) {
		t.Fatal("still ejected after the ejection time")
	}
	e.Success(inst)
	e.Failure(inst)
	if !e.Available(inst) {
		t.Fatal("a success did not reset the count")
	}
	if _, err := NewEjector(0, time.Second); err == nil {
		t.Fatal("zero failures accepted")
	}
}

func TestPickerSkipsUnavailable(t *testing.T) {
	ctx := context.Background()
	reg := memory.New()
	defer reg.Close()
	for i, inst := range instances(3) {
		inst.Unhealthy = i == 0
		if _, err := reg.Register(ctx, inst); err != nil {
			t.Fatal(err)
		}
	}
	r, err := discovery.NewResolver(reg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	open := map[string]bool{"1": true} // breaker open on instance 1
	p, err := NewPicker(r, RoundRobin(), discovery.HealthFunc(func(i discovery.Instance) bool { return !open[i.ID] }))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		inst, done, err := p.Pick(ctx, "s")
		if err != nil || inst.ID != "2" {
			t.Fatalf("Pick = %s, %v; want instance 2 (0 unhealthy, 1 breaker open)", inst.ID, err)
		}
		done()
	}
	open["2"] = true
	if _, _, err := p.Pick(ctx, "s"); !errors.Is(err, discovery.ErrNoAvailableInstance) || !strings.Contains(err.Error(), `"s"`) {
		t.Fatalf("all unavailable: %v", err)
	}
	if _, _, err := p.Pick(ctx, "nope"); !errors.Is(err, discovery.ErrUnknownService) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown service: %v", err)
	}
}
