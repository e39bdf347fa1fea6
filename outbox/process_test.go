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
	"strconv"
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
	req.Header.Set("X-Relay-Pid", strconv.Itoa(os.Getpid()))
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
	killAt  func(pid int)
	killAtN int
	// batches lists which relay process published each batch, and when.
	batches  []batchRecord
	inflight map[int]bool
	overlaps int
}

type batchRecord struct {
	pid int
	at  time.Time
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var batch wireBatch
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	pid, _ := strconv.Atoi(r.Header.Get("X-Relay-Pid"))
	s.mu.Lock()
	for other := range s.inflight {
		if other != pid {
			s.overlaps++ // two relays publishing at once
		}
	}
	s.inflight[pid] = true
	s.mu.Unlock()
	time.Sleep(s.delay) // a broker that takes a moment to confirm
	s.mu.Lock()
	delete(s.inflight, pid)
	s.batches = append(s.batches, batchRecord{pid: pid, at: time.Now()})
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
		kill(pid) // the relay dies waiting for this confirmation: mid-batch
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
			s := &sink{ids: map[string]int{}, inflight: map[int]bool{}, delay: 2 * time.Millisecond}
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
			s.mu.Lock()
			s.killAtN = 300
			s.killAt = func(pid int) {
				children[pid].Process.Signal(syscall.SIGKILL)
				children[pid].Wait()
				killed <- killing{pid, time.Now()}
			}
			s.mu.Unlock()
			var k killing
			select {
			case k = <-killed:
			case <-time.After(30 * time.Second):
				t.Fatal("no relay published 300 messages")
			}
			killedAt := s.unique()
			write(100, 200) // committed while the survivor takes over

			eventually(t, "every committed message after the takeover", func() bool { return s.unique() == len(committed) })
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
			if s.overlaps > 0 {
				t.Fatalf("two relays published at the same time %d times", s.overlaps)
			}
			var takeover time.Duration
			for _, b := range s.batches {
				if b.pid != k.pid && b.at.After(k.at) {
					takeover = b.at.Sub(k.at)
					break
				}
			}
			if takeover == 0 || takeover > 3*time.Second {
				t.Fatalf("the surviving relay took %v to publish after the leader died (lease TTL 1s)", takeover)
			}
			dups := len(s.msgs) - len(s.ids)
			if dups == 0 {
				t.Fatal("no message was published twice: the relay was not killed between publishing a batch and removing it")
			}
			t.Logf("leader killed after %d confirmed messages; survivor published %v later; %d committed messages all delivered, %d delivered twice",
				killedAt, takeover.Round(time.Millisecond), len(committed), dups)
		})
	}
}
