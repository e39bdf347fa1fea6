package natsjs

import (
	"context"
	"sync"
)

// lifecycle is the start and stop machinery that both kinds of
// subscription, sharded and ephemeral, share.
type lifecycle struct {
	hctx   context.Context // the handlers' context
	cancel context.CancelFunc
	stop   chan struct{} // closed when Close begins

	closeOnce sync.Once
	done      chan struct{} // closed when Close has finished
}

// newLifecycle derives the handlers' context from ctx's values, not from
// its cancellation: Subscribe's context bounds the set-up only.
func newLifecycle(ctx context.Context) lifecycle {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return lifecycle{hctx: hctx, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
}

// stopping reports whether Close has begun.
func (l *lifecycle) stopping() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// halt closes stop unless Close has closed it already; for a Subscribe
// that fails half-way.
func (l *lifecycle) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
}

// close runs the first Close of a subscription: it closes stop, runs
// begin, and waits for the goroutines that run handlers (busy) to end. If
// ctx ends first, it cancels the handlers' context and still waits for
// them. Then it runs teardown and the handlers' context ends. Later calls
// wait for the first to finish, or for their own ctx.
func (l *lifecycle) close(ctx context.Context, begin func(), busy *sync.WaitGroup, teardown func()) error {
	first := false
	l.closeOnce.Do(func() { first = true })
	if !first {
		select {
		case <-l.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer close(l.done)
	close(l.stop)
	begin()
	idle := make(chan struct{})
	go func() {
		busy.Wait()
		close(idle)
	}()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
		l.cancel()
		<-idle
	}
	teardown()
	l.cancel()
	return err
}
