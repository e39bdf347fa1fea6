package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-go/courier/internal/backoff"
	"github.com/courier-go/courier/sqldb"
)

// StandbyRetryInterval is the longest a relay that does not lead waits
// before it tries to take the lease again (for leases shorter than 800ms,
// a quarter of the TTL). A leader that stops cleanly releases the lease,
// so a standby takes over within this interval instead of waiting for the
// lease to expire; after a crash, it takes over within this interval of
// the expiry. A try is one primary-key read and, unless the lease is
// held, one update of the lease row.
const StandbyRetryInterval = 200 * time.Millisecond

// StandbyRetry is how long a standby waits between tries for a lease
// with the TTL ttl.
func StandbyRetry(ttl time.Duration) time.Duration { return min(ttl/4, StandbyRetryInterval) }

// errLeaseLapsed is the cause of a context of Keeper.Bound that ended
// because the lease was not renewed in time.
var errLeaseLapsed = fmt.Errorf("%w: not renewed in time", sqldb.ErrLeaseLost)

// Keeper renews a held sqldb.Lease in the background, every quarter
// of its TTL, so that a renewal never stalls a relay's publishing: a
// renewal is a committed UPDATE, and a commit waits for the database's
// disk flush, which on a busy server takes from milliseconds to seconds.
// A relay that renewed inline held back every row committed meanwhile.
//
// While a keeper runs, its owner must use the lease only through the
// keeper (Valid, Lost, Await) and the lease's Fence; after Stop returns, the
// lease is the owner's again (Drop, Release, Acquire). The relay keeps
// its lease with it while it leads, whatever its source.
type Keeper struct {
	lease      *sqldb.Lease
	validUntil atomic.Int64 // Unix nanoseconds; publishing stops after it
	lost       atomic.Bool
	// lostCtx ends when a renewal finds the lease lost.
	lostCtx  context.Context
	markLost context.CancelFunc
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// Keep starts renewing l, which the caller holds (Acquire returned
// true), until Stop, ctx's end or the lease's loss to another process.
// onError, if not nil, receives each failed renewal other than the loss
// (the keeper retries them); onLost, if not nil, is called once if a
// renewal finds the lease lost.
func Keep(ctx context.Context, l *sqldb.Lease, onError func(error), onLost func()) *Keeper {
	k := &Keeper{lease: l}
	k.lostCtx, k.markLost = context.WithCancel(context.Background())
	ttl := l.TTL()
	// The lease is valid for three quarters of its TTL from its last
	// renewal, which was a quarter TTL minus UntilRenew ago.
	k.validUntil.Store(time.Now().Add(l.UntilRenew() + ttl/2).UnixNano())
	kctx, cancel := context.WithCancel(ctx)
	k.cancel = cancel
	k.wg.Go(func() {
		wait := l.UntilRenew()
		for {
			t := time.NewTimer(wait)
			select {
			case <-kctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			started := time.Now()
			err := l.Renew(kctx)
			switch {
			case err == nil:
				k.validUntil.Store(started.Add(ttl * 3 / 4).UnixNano())
				wait = ttl / 4
			case errors.Is(err, sqldb.ErrLeaseLost):
				k.lost.Store(true)
				k.validUntil.Store(0)
				k.markLost()
				if onLost != nil {
					onLost()
				}
				return
			case kctx.Err() != nil:
				return
			default:
				if onError != nil {
					onError(err)
				}
				wait = min(ttl/20, time.Second)
			}
		}
	})
	return k
}

// Valid reports whether the lease is still certainly held: renewed less
// than three quarters of its TTL ago and not lost.
func (k *Keeper) Valid() bool {
	return !k.lost.Load() && time.Now().UnixNano() < k.validUntil.Load()
}

// Lost reports whether a renewal found the lease taken by another process.
func (k *Keeper) Lost() bool { return k.lost.Load() }

// Ended reports whether the keeper stopped or found the lease lost.
func (k *Keeper) Ended() bool { return k.lostCtx.Err() != nil }

// Await returns nil at once while the lease is valid. While a renewal is
// late (a slow commit of the lease row), it waits for the renewal, for up
// to one TTL, so that its caller holds its work instead of abandoning it.
// It returns sqldb.ErrLeaseLost if the lease is lost or still not renewed
// after the TTL, and ctx's error if ctx ends first.
func (k *Keeper) Await(ctx context.Context) error {
	var giveUp time.Time
	for !k.Valid() {
		switch {
		case k.Lost():
			return sqldb.ErrLeaseLost
		case giveUp.IsZero():
			giveUp = time.Now().Add(k.lease.TTL())
		case time.Now().After(giveUp):
			return sqldb.ErrLeaseLost
		}
		backoff.Sleep(ctx, 5*time.Millisecond)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Bound returns a context that ends with ctx, or as soon as the lease is
// no longer certainly held (see Valid), with an error wrapping
// sqldb.ErrLeaseLost as its cause (context.Cause). Work that must not
// outlive the leadership, such as a Send to the broker, runs under it: a
// Send in flight when renewals stop is abandoned a quarter of the TTL
// before the lease expires and another relay may take it. If the lease is
// not valid now, the context has ended already. Call cancel when the work
// is done.
func (k *Keeper) Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	bctx, cancel := context.WithCancelCause(ctx)
	stopLost := context.AfterFunc(k.lostCtx, func() { cancel(sqldb.ErrLeaseLost) })
	var (
		mu    sync.Mutex
		timer *time.Timer
		watch func()
	)
	// watch ends bctx once the validity lapsed, and otherwise looks
	// again when it would lapse without a renewal.
	watch = func() {
		mu.Lock()
		defer mu.Unlock()
		if bctx.Err() != nil {
			return
		}
		if !k.Valid() {
			cancel(errLeaseLapsed)
			return
		}
		timer = time.AfterFunc(time.Until(time.Unix(0, k.validUntil.Load())), watch)
	}
	watch()
	return bctx, func() {
		stopLost()
		mu.Lock()
		if timer != nil {
			timer.Stop()
		}
		mu.Unlock()
		cancel(context.Canceled)
	}
}

// Stop stops renewing and waits for a renewal under way to end. Work under
// Bound ends too: nothing keeps the lease any more.
func (k *Keeper) Stop() {
	k.cancel()
	k.wg.Wait()
	k.markLost()
}
