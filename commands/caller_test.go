package commands_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/commands"
)

// removing is a broker that records the channels it was asked to remove.
type removing struct {
	*memory.Broker
	mu      sync.Mutex
	removed []string
}

func (r *removing) RemoveChannel(_ context.Context, channel string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removed = append(r.removed, channel)
	return nil
}

var _ broker.ChannelRemover = (*removing)(nil)

// A Caller removes on Close the reply channel it named itself, and only
// that one: a channel named by the application may be read by others.
func TestCallerRemovesItsOwnReplyChannel(t *testing.T) {
	ctx := t.Context()
	mb, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close(ctx)
	b := &removing{Broker: mb}

	own, err := commands.NewCaller(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	named, err := commands.NewCaller(ctx, b, "billing.replies.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := own.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := named.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if want := []string{own.ReplyChannel()}; !slices.Equal(b.removed, want) {
		t.Errorf("removed %q, want %q", b.removed, want)
	}
}
