package outbox_test

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testsink"
	"github.com/courier-go/courier/outbox"
)

// The kill -9 test runs relays as real child processes (see relaytest.Main)
// that publish over HTTP to a sink in the parent, which plays the broker.
func TestMain(m *testing.M) {
	relaytest.Main(m, func(c relaytest.Child) (relaytest.Relay, error) {
		return outbox.NewRelay(c.DB, c.Dialect, c.Sink,
			outbox.WithBatchSize(25), outbox.WithLeaseTTL(time.Second), outbox.WithPollInterval(5*time.Millisecond))
	})
}

func TestRelayProcessKilledMidBatchLosesNothing(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			s := testsink.New(2 * time.Millisecond)
			srv := httptest.NewServer(s)
			defer srv.Close()

			w := outbox.NewWriter(d)
			committed := map[string]bool{}
			var rolledBack []string
			write := func(from, to int) {
				for seq := from; seq < to; seq++ {
					commit := seq%7 != 3
					for _, id := range relaytest.WriteOrders(t, db.DB, w, seq, 10, commit) {
						if commit {
							committed[id] = true
						} else {
							rolledBack = append(rolledBack, id)
						}
					}
				}
			}
			write(0, 100)

			// Two relays run; the one that publishes is killed with
			// SIGKILL while it waits for the broker to confirm a batch.
			relays := relaytest.StartRelays(t, 2, db, s, srv.URL, 300)
			relays.Killed()
			killedAt := s.Unique()
			write(100, 200) // committed while the survivor takes over

			relaytest.Eventually(t, "every committed message after the takeover", func() bool { return s.Unique() == len(committed) })
			relaytest.Eventually(t, "the outbox to empty", func() bool { return unpublished(t, db) == 0 })
			relays.Stop()

			for _, id := range rolledBack {
				if s.Has(id) {
					t.Fatalf("rolled-back message %s was published", id)
				}
			}
			ids := s.IDs()
			for id := range ids {
				if !committed[id] {
					t.Fatalf("unknown message %s published", id)
				}
			}
			msgs := s.Messages()
			relaytest.CheckOrder(t, msgs)
			takeover := relays.Takeover(3 * time.Second)
			dups := len(msgs) - len(ids)
			if dups == 0 {
				t.Fatal("no message was published twice: the relay was not killed between publishing a batch and removing it")
			}
			t.Logf("leader killed after %d confirmed messages; survivor published %v later; %d committed messages all delivered, %d delivered twice",
				killedAt, takeover.Round(time.Millisecond), len(committed), dups)
		})
	}
}
