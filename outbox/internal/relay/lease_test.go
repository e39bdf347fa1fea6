package relay_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/outbox/internal/relay"
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
			k := relay.Keep(ctx, l, func(err error) { t.Logf("renewal failed: %v", err) }, func() { lost.Store(true) })
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
