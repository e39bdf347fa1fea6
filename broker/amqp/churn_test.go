package amqp_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/amqp"
	"github.com/courier-go/courier/message"
)

// TestSubscribeWhileOthersClose: instances of one subscriber id start and
// stop at the same time, over and over. Each Subscribe must succeed, even
// when another instance's Close deletes the presence queue (an auto-delete
// queue) between this instance's declaring and consuming it.
func TestSubscribeWhileOthersClose(t *testing.T) {
	u := serverURL(t)
	ch := fmt.Sprintf("churn.%d", time.Now().UnixNano())
	id := "churn-sub." + ch
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := broker.HandlerFunc(func(context.Context, *message.Message) error { return nil })

	workers, rounds := 8, 40
	if testing.Short() {
		rounds = 6
	}
	errs := make(chan error, workers*rounds)
	var wg sync.WaitGroup
	for w := range workers {
		// A Broker each, as instances in processes of their own.
		b := open(t, u, amqp.WithLogger(testLogger(t)))
		if w == 0 {
			t.Cleanup(func() { removeChannels(t, b, ch) })
		}
		wg.Go(func() {
			for r := range rounds {
				sub, err := b.Subscribe(ctx, id, []string{ch}, h, broker.WithLogger(testLogger(t)))
				if err != nil {
					errs <- fmt.Errorf("worker %d, round %d: Subscribe: %w", w, r, err)
					continue
				}
				if err := sub.Close(ctx); err != nil {
					errs <- fmt.Errorf("worker %d, round %d: Close: %w", w, r, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
