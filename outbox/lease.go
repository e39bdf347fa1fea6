package outbox

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/courier-go/courier/sqldb"
)

// LeaseKeeper renews a held sqldb.Lease in the background, every quarter
// of its TTL, so that a renewal never stalls a relay's publishing: a
// renewal is a committed UPDATE, and a commit waits for the database's
// disk flush, which on a busy server takes from milliseconds to seconds.
// A relay that renewed inline held back every row committed meanwhile.
//
// While a keeper runs, its owner must use the lease only through the
// keeper (Valid, Lost, Await) and the lease's Fence; after Stop returns, the
// lease is the owner's again (Drop, Release, Acquire). The polling relay
// and the log-tailing relays use it.
type LeaseKeeper struct {
	lease      *sqldb.Lease
	validUntil atomic.Int64 // Unix nanoseconds; publishing stops after it
	lost       atomic.Bool
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// KeepLease starts renewing l, which the caller holds (Acquire returned
// true), until Stop, ctx's end or the lease's loss to another process.
// onError, if not nil, receives each failed renewal other than the loss
// (the keeper retries them); onLost, if not nil, is called once if a
// renewal finds the lease lost.
func KeepLease(ctx context.Context, l *sqldb.Lease, onError func(error), onLost func()) *LeaseKeeper {
	k := &LeaseKeeper{lease: l}
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
func (k *LeaseKeeper) Valid() bool {
	return !k.lost.Load() && time.Now().UnixNano() < k.validUntil.Load()
}

// Lost reports whether a renewal found the lease taken by another process.
func (k *LeaseKeeper) Lost() bool { return k.lost.Load() }

// Await returns nil at once while the lease is valid. While a renewal is
// late (a slow commit of the lease row), it waits for the renewal, for up
// to one TTL, so that its caller holds its work instead of abandoning it.
// It returns sqldb.ErrLeaseLost if the lease is lost or still not renewed
// after the TTL, and ctx's error if ctx ends first.
func (k *LeaseKeeper) Await(ctx context.Context) error {
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
		sleep(ctx, 5*time.Millisecond)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops renewing and waits for a renewal under way to end.
func (k *LeaseKeeper) Stop() {
	k.cancel()
	k.wg.Wait()
}
