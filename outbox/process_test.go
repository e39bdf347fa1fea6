package outbox_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testsink"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// The kill -9 test runs relays as real child processes: the test binary
// started again with childEnv set. They publish over HTTP to a sink in the
// parent, which plays the broker.
const childEnv = "COURIER_OUTBOX_TEST_RELAY"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChildRelay())
	}
	os.Exit(m.Run())
}

func runChildRelay() int {
	d, err := sqldb.ByName(os.Getenv("COURIER_TEST_DIALECT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	db, err := sql.Open(os.Getenv("COURIER_TEST_DRIVER"), os.Getenv("COURIER_TEST_DSN"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer db.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	relay, err := outbox.NewRelay(db, d, testsink.Producer{URL: os.Getenv("COURIER_TEST_SINK")},
		outbox.WithBatchSize(25), outbox.WithLeaseTTL(time.Second), outbox.WithPollInterval(5*time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if err := relay.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t *testing.T, db *testdb.DB, sinkURL string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1",
		"COURIER_TEST_DIALECT="+db.Dialect.Name(), "COURIER_TEST_DRIVER="+db.Driver,
		"COURIER_TEST_DSN="+db.DSN, "COURIER_TEST_SINK="+sinkURL)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, &out
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
					for _, id := range writeOrders(t, db, w, seq, 10, commit) {
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
			children := map[int]*exec.Cmd{}
			outputs := map[int]*bytes.Buffer{}
			for range 2 {
				cmd, out := startChild(t, db, srv.URL)
				children[cmd.Process.Pid], outputs[cmd.Process.Pid] = cmd, out
			}
			type killing struct {
				pid int
				at  time.Time
			}
			killed := make(chan killing, 1)
			s.KillAt(300, func(pid int) {
				children[pid].Process.Signal(syscall.SIGKILL)
				children[pid].Wait()
				killed <- killing{pid, time.Now()}
			})
			var k killing
			select {
			case k = <-killed:
			case <-time.After(30 * time.Second):
				t.Fatal("no relay published 300 messages")
			}
			killedAt := s.Unique()
			write(100, 200) // committed while the survivor takes over

			eventually(t, "every committed message after the takeover", func() bool { return s.Unique() == len(committed) })
			eventually(t, "the outbox to empty", func() bool { return unpublished(t, db) == 0 })
			for pid, cmd := range children {
				if pid == k.pid {
					continue
				}
				cmd.Process.Signal(syscall.SIGTERM)
				if err := cmd.Wait(); err != nil {
					t.Errorf("surviving relay exited with %v\n%s", err, outputs[pid])
				}
			}

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
			checkOrder(t, msgs)
			if n := s.Overlaps(); n > 0 {
				t.Fatalf("two relays published at the same time %d times", n)
			}
			var takeover time.Duration
			for _, b := range s.Batches() {
				if b.Pid != k.pid && b.At.After(k.at) {
					takeover = b.At.Sub(k.at)
					break
				}
			}
			if takeover == 0 || takeover > 3*time.Second {
				t.Fatalf("the surviving relay took %v to publish after the leader died (lease TTL 1s)", takeover)
			}
			dups := len(msgs) - len(ids)
			if dups == 0 {
				t.Fatal("no message was published twice: the relay was not killed between publishing a batch and removing it")
			}
			t.Logf("leader killed after %d confirmed messages; survivor published %v later; %d committed messages all delivered, %d delivered twice",
				killedAt, takeover.Round(time.Millisecond), len(committed), dups)
		})
	}
}
