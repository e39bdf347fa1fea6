package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

func TestLeaseKeeperRenewsUntilTheLeaseIsLost(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			ctx := context.Background()
			const ttl = 400 * time.Millisecond
			l := sqldb.NewLease(db.DB, d, "keeper", "a", ttl)
			if ok, err := l.Acquire(ctx); !ok || err != nil {
				t.Fatalf("acquire = %v, %v", ok, err)
			}
			var lost atomic.Bool
			k := outbox.KeepLease(ctx, l, func(err error) { t.Logf("renewal failed: %v", err) }, func() { lost.Store(true) })
			defer k.Stop()
			// Valid well past the TTL: the keeper renews it.
			for end := time.Now().Add(3 * ttl); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				if k.Lost() {
					t.Fatal("lease lost while nobody else wanted it")
				}
			}
			// (A renewal may be slow on a busy server: valid again
			// within a TTL is enough; without renewals it never is.)
			for end := time.Now().Add(ttl); !k.Valid(); time.Sleep(5 * time.Millisecond) {
				if time.Now().After(end) {
					t.Fatal("lease not valid after three TTLs of renewals")
				}
			}
			// Another owner takes it (as after an expiry): the keeper
			// must learn it at its next renewal.
			if _, err := db.ExecContext(ctx, d.Rebind("UPDATE courier_lease SET owner = 'b', token = token + 1 WHERE name = ?"), "keeper"); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * ttl)
			for !k.Lost() {
				if time.Now().After(deadline) {
					t.Fatal("the keeper did not notice the lost lease")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if k.Valid() || !lost.Load() || l.Held() {
				t.Fatalf("after the loss: valid %v, onLost called %v, held %v", k.Valid(), lost.Load(), l.Held())
			}
		})
	}
}

func TestRunAsLeaderRunsOneWorkerAtATime(t *testing.T) {
	db := testdb.SQLite(t)
	const ttl = 200 * time.Millisecond
	var active, most atomic.Int32
	var worked [2]atomic.Int32
	fatal := errors.New("fatal")
	run := func(ctx context.Context, i int, leader *atomic.Bool) error {
		l := sqldb.NewLease(db.DB, sqldb.SQLite, "leader", fmt.Sprint("owner-", i), ttl)
		return outbox.RunAsLeader(ctx, l, outbox.LeaderOptions{Role: "test", Logger: relaytest.Quiet(), Leader: leader,
			Fatal: func(err error) bool { return errors.Is(err, fatal) }},
			func(ctx context.Context, k *outbox.LeaseKeeper) (bool, error) {
				n := active.Add(1)
				defer active.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				if !k.Valid() || !leader.Load() {
					return false, fatal
				}
				switch worked[i].Add(1) {
				case 1:
					return false, errors.New("retried")
				case 2:
					return false, sqldb.ErrLeaseLost // acquired again
				}
				<-ctx.Done()
				return false, nil
			})
	}
	var leaders [2]atomic.Bool
	var cancels [2]context.CancelFunc
	done := make(chan error, 2)
	for i := range 2 {
		var ctx context.Context
		ctx, cancels[i] = context.WithCancel(context.Background())
		defer cancels[i]()
		go func() { done <- run(ctx, i, &leaders[i]) }()
	}
	first := -1
	for end := time.Now().Add(10 * time.Second); first < 0; time.Sleep(5 * time.Millisecond) {
		for i := range 2 {
			if worked[i].Load() >= 3 {
				first = i
			}
		}
		if time.Now().After(end) {
			t.Fatal("no worker led")
		}
	}
	cancels[first]() // releases the lease: the other takes over at once
	if err := <-done; err != nil {
		t.Fatalf("RunAsLeader = %v after its context ended", err)
	}
	if leaders[first].Load() {
		t.Fatal("still the leader after RunAsLeader returned")
	}
	other := 1 - first
	for end := time.Now().Add(10 * time.Second); worked[other].Load() < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the other worker did not take over")
		}
	}
	cancels[other]()
	if err := <-done; err != nil {
		t.Fatalf("RunAsLeader = %v after its context ended", err)
	}
	if most.Load() != 1 {
		t.Fatalf("%d workers ran at once", most.Load())
	}

	l := sqldb.NewLease(db.DB, sqldb.SQLite, "fatal", "a", ttl)
	err := outbox.RunAsLeader(context.Background(), l, outbox.LeaderOptions{Logger: relaytest.Quiet(),
		Fatal: func(err error) bool { return errors.Is(err, fatal) }},
		func(context.Context, *outbox.LeaseKeeper) (bool, error) { return false, fatal })
	if !errors.Is(err, fatal) || l.Held() {
		t.Fatalf("RunAsLeader = %v (lease held %v), want the fatal error and the lease released", err, l.Held())
	}
}

// The log-tailing relays' leader that stops cleanly releases the lease,
// and a standby starts working at once, not after the lease's TTL.
func TestRunAsLeaderHandsOverAtOnce(t *testing.T) {
	db := testdb.SQLite(t)
	const ttl = 10 * time.Second
	working := make(chan string, 2)
	run := func(owner string) context.CancelFunc {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		l := sqldb.NewLease(db.DB, sqldb.SQLite, "handover", owner, ttl)
		go func() {
			done <- outbox.RunAsLeader(ctx, l, outbox.LeaderOptions{Logger: relaytest.Quiet()},
				func(ctx context.Context, _ *outbox.LeaseKeeper) (bool, error) {
					working <- owner
					<-ctx.Done()
					return false, nil
				})
		}()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("RunAsLeader %s = %v", owner, err)
			}
		})
		return cancel
	}
	stop := run("leader")
	if w := <-working; w != "leader" {
		t.Fatalf("%s works first", w)
	}
	run("standby")
	time.Sleep(300 * time.Millisecond) // the standby finds the lease held and waits
	stopped := time.Now()
	stop()
	select {
	case w := <-working:
		took := time.Since(stopped)
		if w != "standby" || took > ttl/10 {
			t.Fatalf("%s started working %v after the leader stopped, want the standby well under the lease TTL %v", w, took, ttl)
		}
		t.Logf("the standby started working %v after the leader stopped", took.Round(time.Millisecond))
	case <-time.After(2 * ttl):
		t.Fatal("the standby never started working")
	}
}
