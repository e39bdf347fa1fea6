package adapter

import (
	"context"
	"errors"
	"github.com/courier-go/courier/broker"
	"sync/atomic"
	"testing"
)

type fakeSub struct {
	closed atomic.Int32
	err    error
}

func (s *fakeSub) Close(context.Context) error {
	s.closed.Add(1)
	return s.err
}

func TestSubscriptionsCloseClosesWhatIsLeftAndRefusesMore(t *testing.T) {
	var r Subscriptions[*fakeSub]
	kept, removed, failing := &fakeSub{}, &fakeSub{}, &fakeSub{err: errors.New("stuck")}
	started := 0
	for _, s := range []*fakeSub{kept, removed, failing} {
		if err := r.Add(s, func() { started++ }); err != nil {
			t.Fatal(err)
		}
	}
	if started != 3 || r.Closing() {
		t.Fatalf("started %d, closing %v", started, r.Closing())
	}
	r.Remove(removed)
	first, err := r.Close(context.Background())
	if !first || !errors.Is(err, failing.err) {
		t.Fatalf("Close = %v, %v; want the first call with the failing subscription's error", first, err)
	}
	if kept.closed.Load() != 1 || failing.closed.Load() != 1 || removed.closed.Load() != 0 {
		t.Fatalf("closed: kept %d, failing %d, removed %d", kept.closed.Load(), failing.closed.Load(), removed.closed.Load())
	}
	if first, err := r.Close(context.Background()); first || err != nil {
		t.Fatalf("second Close = %v, %v", first, err)
	}
	if err := r.Add(&fakeSub{}, func() { started++ }); !errors.Is(err, broker.ErrClosed) || started != 3 || !r.Closing() {
		t.Fatalf("Add after Close = %v (started %d, closing %v)", err, started, r.Closing())
	}
	if kept.closed.Load() != 1 {
		t.Fatal("a subscription was closed twice")
	}
}
