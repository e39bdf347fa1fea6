package outbox

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/courier-go/courier/sqldb"
)

// LeaderOptions is what RunAsLeader reports to, and asks of, its caller.
// Every field may be left zero.
type LeaderOptions struct {
	// Role names the caller in the log lines about leadership, e.g.
	// "binlog relay".
	Role string
	// Logger receives those lines (default slog.Default()).
	Logger *slog.Logger
	// Leader, if not nil, is set while this process leads.
	Leader *atomic.Bool
	// OnError, if not nil, receives each failure of work and each failed
	// acquisition or renewal of the lease.
	OnError func(error)
	// Fatal, if not nil, reports whether an error of work ends
	// RunAsLeader.
	Fatal func(error) bool
}

// RunAsLeader runs work while this process holds lease, until ctx ends;
// then it releases the lease, so that a standby takes over within
// StandbyRetryInterval, and returns nil. It serves the relays that
// tail a database's transaction log: one of several processes streams,
// the others wait for the lease.
//
// It tries to acquire the lease every StandbyRetryInterval (or, after
// renewals failed for a while, renews it), keeps it with a LeaseKeeper
// and calls work with the keeper. work
// runs until ctx ends or it fails, and reports whether it made progress
// (e.g. received from its stream). After sqldb.ErrLeaseLost, RunAsLeader
// stops leading, forgets the holding and competes for the lease again;
// after an error opts.Fatal accepts, it returns that error; after any
// other, it waits, from 200ms doubling up to 5s (again from 200ms after
// progress), and calls work again with the same keeper.
func RunAsLeader(ctx context.Context, lease *sqldb.Lease, opts LeaderOptions,
	work func(ctx context.Context, k *LeaseKeeper) (progressed bool, err error)) error {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	onError := func(err error) {
		if opts.OnError != nil {
			opts.OnError(err)
		}
	}
	setLeader := func(v bool) {
		if opts.Leader != nil {
			opts.Leader.Store(v)
		}
	}
	var keeper *LeaseKeeper
	stopLeading := func() {
		if keeper != nil {
			keeper.Stop()
			keeper = nil
		}
		setLeader(false)
	}
	defer func() {
		stopLeading() // before another process can take the released lease
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		lease.Release(rctx)
	}()
	failures := 0
	for ctx.Err() == nil {
		if keeper == nil {
			if !lease.Held() {
				ok, err := lease.Acquire(ctx)
				if err != nil {
					onError(err)
				}
				if !ok {
					sleep(ctx, standbyRetry(lease.TTL()))
					continue
				}
				logger.Info("courier: "+opts.Role+" is now the leader", slog.Int64("token", lease.Token()))
			} else if !lease.Valid() {
				// Renewals failed for a while (e.g. the database
				// restarted): renew before working, or learn that another
				// process leads.
				if err := lease.Renew(ctx); err != nil {
					if !errors.Is(err, sqldb.ErrLeaseLost) {
						onError(err)
					}
					sleep(ctx, min(lease.TTL()/4, time.Second))
					continue
				}
			}
			// Renewals run beside the work, so that a slow commit of the
			// lease row never holds it back.
			keeper = KeepLease(ctx, lease, onError, func() { setLeader(false) })
			setLeader(true)
		}
		progressed, err := work(ctx, keeper)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, sqldb.ErrLeaseLost) {
			stopLeading()
			lease.Drop()
			logger.Warn("courier: " + opts.Role + " lost the lease")
			continue
		}
		if opts.Fatal != nil && opts.Fatal(err) {
			return err
		}
		if progressed {
			failures = 0
		}
		failures++
		if err != nil {
			onError(err)
		}
		sleep(ctx, min(100*time.Millisecond<<min(failures, 6), 5*time.Second))
	}
	return nil
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
