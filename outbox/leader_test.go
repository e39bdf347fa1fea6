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
	"github.com/courier-go/courier/outbox/internal/relay"
	"github.com/courier-go/courier/sqldb"
)

// fakeSource is a source whose readers run open: each Open is one spell
// of leading.
type fakeSource struct {
	open func(ctx context.Context, lead relay.Lead) (relay.Reader, error)
}

func (s *fakeSource) Bind(relay.Env) error                   { return nil }
func (s *fakeSource) Setup(context.Context) error            { return nil }
func (s *fakeSource) Lag(context.Context) (relay.Lag, error) { return relay.Lag{}, nil }
func (s *fakeSource) Progress() relay.Progress               { return relay.Progress{} }
func (s *fakeSource) Open(ctx context.Context, l relay.Lead) (relay.Reader, error) {
	return s.open(ctx, l)
}

// fakeReader's Read calls read, and Close calls close.
type fakeReader struct {
	read  func(ctx context.Context) ([]relay.Row, error)
	close func()
}

func (r *fakeReader) Read(ctx context.Context) ([]relay.Row, error) { return r.read(ctx) }
func (r *fakeReader) Confirm(context.Context, []bool) error         { return nil }
func (r *fakeReader) Close(context.Context) error {
	if r.close != nil {
		r.close()
	}
	return nil
}

// Two relays on one outbox: one leads at a time; a failed reader is opened
// again under the same lease; a lost lease is competed for again; the
// leader that stops hands over; a fatal error ends Run and releases the
// lease.
func TestRelayLeadsOneAtATime(t *testing.T) {
	db := testdb.SQLite(t)
	b := newBroker(t)
	const ttl = 200 * time.Millisecond
	var active, most atomic.Int32
	var worked [2]atomic.Int32
	fatal := errors.New("fatal")
	relays := make([]*outbox.Relay, 2)
	for i := range relays {
		src := &fakeSource{open: func(ctx context.Context, l relay.Lead) (relay.Reader, error) {
			n := active.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			if !l.Keeper.Valid() {
				return nil, relay.Fatal(fatal)
			}
			w := worked[i].Add(1)
			return &fakeReader{close: func() { active.Add(-1) }, read: func(ctx context.Context) ([]relay.Row, error) {
				switch w {
				case 1:
					return nil, errors.New("retried")
				case 2:
					return nil, sqldb.ErrLeaseLost // acquired again
				}
				<-ctx.Done()
				return nil, nil
			}}, nil
		}}
		r, err := outbox.NewRelay(db.DB, db.Dialect, b, outbox.WithSource(src), outbox.WithLeaseTTL(ttl),
			outbox.WithOwner(fmt.Sprint("owner-", i)), outbox.WithLogger(relaytest.Quiet()))
		if err != nil {
			t.Fatal(err)
		}
		relays[i] = r
	}
	var cancels [2]context.CancelFunc
	done := make(chan error, 2)
	for i, r := range relays {
		var ctx context.Context
		ctx, cancels[i] = context.WithCancel(context.Background())
		defer cancels[i]()
		go func() { done <- r.Run(ctx) }()
	}
	first := -1
	for end := time.Now().Add(10 * time.Second); first < 0; time.Sleep(5 * time.Millisecond) {
		for i := range 2 {
			if worked[i].Load() >= 3 && relays[i].Stats().Leader {
				first = i
			}
		}
		if time.Now().After(end) {
			t.Fatal("no relay led")
		}
	}
	cancels[first]() // releases the lease: the other takes over at once
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after its context ended", err)
	}
	if relays[first].Stats().Leader {
		t.Fatal("still the leader after Run returned")
	}
	other := 1 - first
	for end := time.Now().Add(10 * time.Second); worked[other].Load() < 3; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the other relay did not take over")
		}
	}
	cancels[other]()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after its context ended", err)
	}
	if most.Load() != 1 {
		t.Fatalf("%d readers ran at once", most.Load())
	}

	failing := &fakeSource{open: func(context.Context, relay.Lead) (relay.Reader, error) { return nil, relay.Fatal(fatal) }}
	r, err := outbox.NewRelay(db.DB, db.Dialect, b, outbox.WithSource(failing), outbox.WithName("fatal"), outbox.WithLogger(relaytest.Quiet()))
	if err != nil {
		t.Fatal(err)
	}
	err = r.Run(context.Background())
	var owner string
	if qerr := db.QueryRow("SELECT owner FROM courier_lease WHERE name = 'outbox:fatal'").Scan(&owner); qerr != nil {
		t.Fatal(qerr)
	}
	if !errors.Is(err, fatal) || owner != "" {
		t.Fatalf("Run = %v (lease owner %q), want the fatal error and the lease released", err, owner)
	}
}

// A leader that stops cleanly releases the lease, and a standby starts
// reading at once, not after the lease's TTL, whatever its source.
func TestRelayHandsOverAtOnce(t *testing.T) {
	db := testdb.SQLite(t)
	b := newBroker(t)
	const ttl = 10 * time.Second
	working := make(chan string, 2)
	run := func(owner string) context.CancelFunc {
		src := &fakeSource{open: func(context.Context, relay.Lead) (relay.Reader, error) {
			working <- owner
			return &fakeReader{read: func(ctx context.Context) ([]relay.Row, error) { <-ctx.Done(); return nil, nil }}, nil
		}}
		r, err := outbox.NewRelay(db.DB, db.Dialect, b, outbox.WithSource(src), outbox.WithLeaseTTL(ttl), outbox.WithOwner(owner),
			outbox.WithLogger(relaytest.Quiet()))
		if err != nil {
			t.Fatal(err)
		}
		return relaytest.Run(t, r)
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
