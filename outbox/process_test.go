package outbox_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testsink"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// The kill -9 test runs relays as real child processes (see relaytest.Main)
// that publish over HTTP to a sink in the parent, which plays the broker.
// They keep the default lease TTL: the test bounds the takeover with it.
func TestMain(m *testing.M) {
	relaytest.Main(m, func(c relaytest.Child) (relaytest.Relay, error) {
		return outbox.NewRelay(c.DB, c.Dialect, c.Sink, outbox.WithBatchSize(25), outbox.WithPollInterval(5*time.Millisecond))
	})
}

// killRun is what killLeaderMidBatch saw.
type killRun struct {
	committed  map[string]bool
	rolledBack []string
	killedAt   int // distinct messages confirmed when the leader was killed
	msgs       []*message.Message
	ids        map[string]int
	takeover   time.Duration
}

// killLeaderMidBatch runs two relay processes on a fresh database of
// dialect d, lets them wait on the empty outbox for idle, then commits
// messages; the one that publishes is killed with SIGKILL while it waits
// for the broker to confirm a batch. It waits until the survivor published
// every committed message and emptied the outbox, checks that no two
// processes published at once and that the survivor took over within the
// lease TTL and a second, and stops it.
func killLeaderMidBatch(tb testing.TB, d *sqldb.Dialect, idle time.Duration) killRun {
	tb.Helper()
	db := testdb.Open(tb, d)
	run := killRun{committed: map[string]bool{}}
	s := testsink.New(2 * time.Millisecond)
	srv := httptest.NewServer(s)
	defer srv.Close()

	w := outbox.NewWriter(d)
	write := func(from, to int) {
		for seq := from; seq < to; seq++ {
			commit := seq%7 != 3
			for _, id := range relaytest.WriteOrders(tb, db.DB, w, seq, 10, commit) {
				if commit {
					run.committed[id] = true
				} else {
					run.rolledBack = append(run.rolledBack, id)
				}
			}
		}
	}
	relays := relaytest.StartRelays(tb, 2, db, s, srv.URL, 300)
	time.Sleep(idle)
	write(0, 100)
	relays.Killed()
	run.killedAt = s.Unique()
	write(100, 200) // committed while the survivor takes over

	relaytest.Eventually(tb, "every committed message after the takeover", func() bool { return s.Unique() == len(run.committed) })
	relaytest.Eventually(tb, "the outbox to empty", func() bool { return unpublished(tb, db) == 0 })
	relays.Stop()
	run.msgs, run.ids, run.takeover = s.Messages(), s.IDs(), relays.Takeover(outbox.DefaultLeaseTTL+time.Second)
	return run
}

func TestRelayProcessKilledMidBatchLosesNothing(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			run := killLeaderMidBatch(t, d, 0)
			for _, id := range run.rolledBack {
				if run.ids[id] > 0 {
					t.Fatalf("rolled-back message %s was published", id)
				}
			}
			for id := range run.ids {
				if !run.committed[id] {
					t.Fatalf("unknown message %s published", id)
				}
			}
			relaytest.CheckOrder(t, run.msgs)
			dups := len(run.msgs) - len(run.ids)
			if dups == 0 {
				t.Fatal("no message was published twice: the relay was not killed between publishing a batch and removing it")
			}
			t.Logf("leader killed after %d confirmed messages; survivor published %v later; %d committed messages all delivered, %d delivered twice",
				run.killedAt, run.takeover.Round(time.Millisecond), len(run.committed), dups)
		})
	}
}
