package amqp_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/broker/amqp"
	"github.com/courier-go/courier/message"
)

// TestSharedChannelError: Sends share publishing channels, and a message
// to an exchange deleted behind the Broker's back makes RabbitMQ close the
// channel it was published on. The Send to the deleted exchange declares it
// again and succeeds, and so do the Sends that shared the channel with it.
func TestSharedChannelError(t *testing.T) {
	u := serverURL(t)
	b := open(t, u, amqp.WithPublishChannels(1))
	other := open(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	gone, busy := "shared-gone."+suffix, "shared-busy."+suffix
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, ch := range []string{gone, busy} {
			if err := other.RemoveChannel(ctx, ch); err != nil {
				t.Errorf("RemoveChannel(%s): %v", ch, err)
			}
		}
	})
	if err := b.Send(ctx, gone, message.New([]byte("first"))); err != nil {
		t.Fatalf("Send to %s: %v", gone, err)
	}

	const senders, sends = 16, 40
	stop := make(chan struct{})
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < sends; i++ {
				select {
				case <-stop:
					if i > 0 {
						return
					}
				default:
				}
				m := message.New([]byte(fmt.Sprintf("%d/%d", g, i)))
				if err := b.Send(ctx, busy, m, message.New([]byte("second"))); err != nil {
					errs <- fmt.Errorf("Send to %s: %w", busy, err)
					return
				}
			}
		}()
	}
	for i := range 5 {
		if err := other.RemoveChannel(ctx, gone); err != nil {
			t.Fatalf("RemoveChannel(%s): %v", gone, err)
		}
		if err := b.Send(ctx, gone, message.New([]byte(fmt.Sprintf("again %d", i)))); err != nil {
			t.Fatalf("Send to %s after its exchange was deleted (round %d): %v", gone, i, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
