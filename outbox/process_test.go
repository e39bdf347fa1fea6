package outbox_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// The kill -9 test runs relays as real child processes: the test binary
// started again with childEnv set. They publish over HTTP to a sink in the
// parent, which plays the broker: a POST that returned 200 is a confirmed
// publish.
const childEnv = "COURIER_OUTBOX_TEST_RELAY"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChildRelay())
	}
	os.Exit(m.Run())
}

type wireMessage struct {
	ID      string            `json:"id"`
	Headers map[string]string `json:"headers"`
	Payload []byte            `json:"payload"`
}

type wireBatch struct {
	Channel  string        `json:"channel"`
	Messages []wireMessage `json:"messages"`
}

// httpProducer is the child's broker.Producer.
type httpProducer struct{ url string }

func (p httpProducer) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	batch := wireBatch{Channel: channel}
	for _, m := range msgs {
		batch.Messages = append(batch.Messages, wireMessage{ID: m.ID, Headers: m.Headers, Payload: m.Payload})
	}
	body, err := json.Marshal(batch)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sink answered %s", resp.Status)
	}
	return nil
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
	relay, err := outbox.NewRelay(db, d, httpProducer{url: os.Getenv("COURIER_TEST_SINK")},
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

// sink records confirmed publishes in arrival order.
type sink struct {
	mu    sync.Mutex
	msgs  []*message.Message
	ids   map[string]int
	delay time.Duration
	// killAt, when set, is called once the sink holds at least killAtN
	// messages, before the publish that reached it is confirmed.
	killAt  func()
	killAtN int
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var batch wireBatch
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	time.Sleep(s.delay) // a broker that takes a moment to confirm
	s.mu.Lock()
	for _, m := range batch.Messages {
		s.msgs = append(s.msgs, &message.Message{ID: m.ID, Headers: m.Headers, Payload: m.Payload})
		s.ids[m.ID]++
	}
	kill := s.killAt
	if kill != nil && len(s.ids) >= s.killAtN {
		s.killAt = nil
	} else {
		kill = nil
	}
	s.mu.Unlock()
	if kill != nil {
		kill() // the relay dies waiting for this confirmation: mid-batch
	}
}

func (s *sink) unique() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
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
			s := &sink{ids: map[string]int{}, delay: 2 * time.Millisecond}
			srv := httptest.NewServer(s)
			defer srv.Close()

			w := outbox.NewWriter(d)
			committed := map[string]bool{}
			var rolledBack []string
			write := func(from, to int) {
				for seq := from; seq < to; seq++ {
					commit := seq%7 != 3
					ids := writeOrders(t, db, w, seq, 10, commit)
					for _, id := range ids {
						if commit {
							committed[id] = true
						} else {
							rolledBack = append(rolledBack, id)
						}
					}
				}
			}
			write(0, 100)

			first, firstOut := startChild(t, db, srv.URL)
			killed := make(chan struct{})
			s.mu.Lock()
			s.killAtN = 300
			s.killAt = func() {
				first.Process.Signal(syscall.SIGKILL)
				first.Wait()
				close(killed)
			}
			s.mu.Unlock()
			select {
			case <-killed:
			case <-time.After(30 * time.Second):
				t.Fatalf("the first relay never published 300 messages\n%s", firstOut)
			}
			killedAt := s.unique()
			write(100, 200) // committed while no relay runs

			second, secondOut := startChild(t, db, srv.URL)
			eventually(t, "every committed message after the restart", func() bool { return s.unique() == len(committed) })
			eventually(t, "the outbox to empty", func() bool { return unpublished(t, db) == 0 })
			second.Process.Signal(syscall.SIGTERM)
			if err := second.Wait(); err != nil {
				t.Errorf("second relay exited with %v\n%s", err, secondOut)
			}

			s.mu.Lock()
			defer s.mu.Unlock()
			for _, id := range rolledBack {
				if s.ids[id] > 0 {
					t.Fatalf("rolled-back message %s was published", id)
				}
			}
			for id := range s.ids {
				if !committed[id] {
					t.Fatalf("unknown message %s published", id)
				}
			}
			checkOrder(t, s.msgs)
			dups := len(s.msgs) - len(s.ids)
			if dups == 0 {
				t.Fatal("no message was published twice: the relay was not killed between publishing a batch and removing it")
			}
			t.Logf("killed after %d confirmed messages; %d committed messages all delivered, %d delivered twice; first relay said: %q",
				killedAt, len(committed), dups, firstOut.String())
		})
	}
}
