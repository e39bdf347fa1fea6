package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// firstSend is a producer that notes when it first sent successfully.
type firstSend struct {
	broker.Producer
	at atomic.Int64 // Unix nanoseconds; 0 before the first Send
}

func (p *firstSend) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	err := p.Producer.Send(ctx, channel, msgs...)
	if err == nil {
		p.at.CompareAndSwap(0, time.Now().UnixNano())
	}
	return err
}

// stoppedLeaderHandover runs two relays with the lease TTL ttl on a fresh
// database of dialect d, stops the leader cleanly (its context ends) while
// the other stands by, commits a message and returns how long after the
// stop the standby published it.
func stoppedLeaderHandover(tb testing.TB, d *sqldb.Dialect, ttl time.Duration) time.Duration {
	tb.Helper()
	db := testdb.Open(tb, d)
	b := newBroker(tb)
	got := relaytest.Collect(tb, b, "orders")
	start := func(owner string) (*outbox.Relay, *firstSend, context.CancelFunc) {
		p := &firstSend{Producer: b}
		r, stop := runRelay(tb, db.DB, d, p, outbox.WithLeaseTTL(ttl), outbox.WithPollInterval(5*time.Millisecond), outbox.WithOwner(owner))
		return r, p, stop
	}
	leader, _, stop := start("leader")
	relaytest.Eventually(tb, "the first relay to lead", func() bool { return leader.Stats().Leader })
	standby, p, _ := start("standby")
	// Let the standby find the lease held and settle into waiting; the
	// leader stops at a random moment of the standby's wait.
	time.Sleep(300*time.Millisecond + rand.N(outbox.StandbyRetryInterval))
	if standby.Stats().Leader {
		tb.Fatal("the standby leads while the leader runs")
	}
	stopped := time.Now()
	stop()
	w := outbox.NewWriter(d)
	relaytest.WriteOrders(tb, db.DB, w, 0, 1, true)
	relaytest.Eventually(tb, "the standby to publish", func() bool { return p.at.Load() != 0 && got.Count() == 1 })
	return time.Unix(0, p.at.Load()).Sub(stopped)
}

// A leader that stops cleanly releases its lease, and a standby takes it
// at once, not after the lease's TTL.
func TestStoppedLeaderHandsOverAtOnce(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			const ttl = 10 * time.Second
			took := stoppedLeaderHandover(t, d, ttl)
			if took > ttl/10 {
				t.Fatalf("the standby published %v after the leader stopped, want well under the lease TTL %v", took, ttl)
			}
			t.Logf("the standby published %v after the leader stopped", took.Round(time.Millisecond))
		})
	}
}

// blockingProducer blocks each Send until its context ends, and reports
// the end.
type blockingProducer struct {
	entered chan struct{}
	ended   chan error // context.Cause of the Send's context
}

func (p *blockingProducer) Send(ctx context.Context, _ string, _ ...*message.Message) error {
	select {
	case p.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	p.ended <- context.Cause(ctx)
	return ctx.Err()
}

// A leader whose lease is no longer renewed (its database is gone) must
// abandon a Send it has in flight before the lease expires, so that it
// does not publish while another relay may lead.
func TestLapsedLeaseAbandonsTheSendInFlight(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			leaderDB, err := sql.Open(db.Driver, db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			defer leaderDB.Close()
			p := &blockingProducer{entered: make(chan struct{}, 1), ended: make(chan error, 10)}
			const ttl = time.Second
			r, _ := runRelay(t, leaderDB, d, p, outbox.WithLeaseTTL(ttl), outbox.WithPollInterval(5*time.Millisecond))
			relaytest.WriteOrders(t, db.DB, outbox.NewWriter(d), 0, 1, true)
			select {
			case <-p.entered:
			case <-time.After(30 * time.Second):
				t.Fatal("the relay did not publish")
			}
			// The leader's database goes away: no more renewals. Close
			// waits for a renewal under way, so the expiry read next is
			// the last one.
			leaderDB.Close()
			var expires int64
			if err := db.QueryRow(d.Rebind("SELECT expires_at FROM courier_lease WHERE name = ?"), "outbox:"+outbox.DefaultRelayName).Scan(&expires); err != nil {
				t.Fatal(err)
			}
			select {
			case cause := <-p.ended:
				left := time.Until(time.UnixMilli(expires))
				if !errors.Is(cause, sqldb.ErrLeaseLost) {
					t.Fatalf("the Send ended with %v, want the lease's lapse", cause)
				}
				if left <= 0 {
					t.Fatalf("the Send ended %v after the lease expired", -left)
				}
				t.Logf("the Send was abandoned %v before the lease expired", left.Round(time.Millisecond))
			case <-time.After(2 * ttl):
				t.Fatal("the Send is still in flight after the lease expired")
			}
			if s := r.Stats(); s.PublishErrors != 0 || !s.PublishFailingSince.IsZero() {
				t.Fatalf("stats = %+v: an abandoned Send is not the broker's failure", s)
			}
		})
	}
}

// BenchmarkTakeover measures how long the standby of two relays takes to
// publish after the leader stops cleanly (its context ends; in process)
// and after it is killed with SIGKILL while it publishes (relay
// processes), with the default lease TTL. Both happen at a random moment
// of the standby's wait and of the leader's renewal period:
//
//	go test -run '^$' -bench Takeover -benchtime 5x ./outbox/
func BenchmarkTakeover(b *testing.B) {
	for _, d := range testdb.Dialects {
		b.Run(d.Name()+"/stop", func(b *testing.B) {
			reportTakeovers(b, func() time.Duration { return stoppedLeaderHandover(b, d, outbox.DefaultLeaseTTL) })
		})
		b.Run(d.Name()+"/kill", func(b *testing.B) {
			reportTakeovers(b, func() time.Duration { return killLeaderMidBatch(b, d, rand.N(outbox.DefaultLeaseTTL/4)).takeover })
		})
	}
}

// reportTakeovers runs takeover b.N times and reports the median and the
// longest in milliseconds.
func reportTakeovers(b *testing.B, takeover func() time.Duration) {
	var all []time.Duration
	for range b.N {
		all = append(all, takeover())
	}
	slices.Sort(all)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(all[len(all)-1].Microseconds())/1000, "max-ms")
}
