package direct_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/direct"
	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/etcd/etcdserver"
	"github.com/courier-go/courier/discovery/registryurl"
	"github.com/courier-go/courier/internal/testproc"
	"github.com/courier-go/courier/message"
)

func TestMain(m *testing.M) { testproc.Main(m, runReceiver) }

// runReceiver is a receiver process: a direct broker on the registry of
// args[0] with one instance of subscriber id args[2] on channel args[1],
// whose handler takes 5ms a message and prints each one it finished, until
// it is stopped or killed.
func runReceiver(ctx context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) != 3 {
		return fmt.Errorf("receiver: want registry URL, channel and subscriber id, got %q", args)
	}
	reg, err := registryurl.Open(ctx, args[0], registryurl.WithLogger(quiet))
	if err != nil {
		return err
	}
	defer reg.Close()
	b, err := direct.New(reg, direct.WithLogger(quiet), direct.WithRegisterOptions(discovery.WithTTL(time.Second)))
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	out := make(chan string, 1024)
	_, err = b.Subscribe(ctx, args[2], []string{args[1]}, broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		time.Sleep(5 * time.Millisecond)
		out <- string(m.Payload)
		return nil
	}))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "subscribed pid %d\n", os.Getpid())
	for {
		select {
		case p := <-out:
			fmt.Fprintf(stdout, "handled %s\n", p)
		case <-ctx.Done():
			return nil
		}
	}
}

// TestReceiverProcessKilled runs the receiver in a process of its own,
// found through an embedded etcd, and kills it with SIGKILL while it has a
// backlog: what its Send had handed over and it had not handled is lost
// (there is no broker to keep it), a Send while it is gone fails with
// ErrNoLiveInstance instead of dropping the message, and a new receiver
// gets what is sent after it registered, not what the dead one held.
func TestReceiverProcessKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and two processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	etcd, err := etcdserver.Start(ctx, etcdserver.Config{Dir: t.TempDir(), LogLevel: "fatal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { etcd.Close() })
	url := "etcd://" + strings.TrimPrefix(etcd.Endpoint(), "http://")
	reg, err := registryurl.Open(ctx, url, registryurl.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	sender := newBroker(t, reg, direct.WithRetryWait(50*time.Millisecond))
	t.Cleanup(func() { sender.Close(context.Background()) })

	const channel, subscriber = "orders", "kitchen"
	procs := testproc.NewGroup(t)
	first, err := procs.Start("receiver-1", []string{url, channel, subscriber}, "subscribed")
	if err != nil {
		t.Fatal(err)
	}
	send := func(ctx context.Context, i int) error {
		return sender.Send(ctx, channel, message.NewBuilder([]byte(fmt.Sprint(i))).WithPartitionKey(fmt.Sprint("k", i%4)).Build())
	}
	// reached reports whether a probe sent now reached the receiver p:
	// whether p has handled one. A nil Send alone does not say so: until
	// the sender's registry watch reports a new instance, a Send that
	// sees no instance of the channel delivers to nobody and returns nil
	// (see the package documentation), and once the killed receiver's
	// lease has expired the sender sees none until it sees the new one.
	reached := func(p *testproc.Proc, probe int) func() bool {
		return func() bool {
			sctx, scancel := context.WithTimeout(ctx, time.Second)
			defer scancel()
			if err := send(sctx, probe); err != nil {
				return false
			}
			return strings.Contains(p.Output(), fmt.Sprintf("handled %d\n", probe))
		}
	}
	waitFor(t, "the sender to reach the receiver", reached(first, -1))
	const before = 300
	for i := range before {
		if err := send(ctx, i); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	first.Stop(true) // SIGKILL with a backlog of about a second's work
	handled := countHandled(first.Output(), 0, before)
	lost := before - handled
	t.Logf("%d messages accepted by the receiver before it was killed: %d handled, %d lost", before, handled, lost)
	if lost == 0 {
		t.Fatal("nothing was lost: Send seems to wait for the handler, not for the receiver's queue")
	}

	// Until its lease expires the dead receiver is still registered: a
	// Send tries it, waits within its context and fails, and one that
	// lasts beyond the expiry fails too, rather than drop the message.
	sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = send(sctx, before)
	scancel()
	if !errors.Is(err, direct.ErrNoLiveInstance) {
		t.Fatalf("Send to a killed receiver = %v, want ErrNoLiveInstance", err)
	}
	sctx, scancel = context.WithTimeout(ctx, 5*time.Second)
	err = send(sctx, before)
	scancel()
	if !errors.Is(err, direct.ErrNoLiveInstance) {
		t.Fatalf("Send while the killed receiver's lease expires = %v, want ErrNoLiveInstance", err)
	}

	second, err := procs.Start("receiver-2", []string{url, channel, subscriber}, "subscribed")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sender to reach the new receiver", reached(second, -2))
	const after = 50
	for i := range after {
		if err := send(ctx, 1000+i); err != nil {
			t.Fatalf("Send %d to the new receiver: %v", i, err)
		}
	}
	waitFor(t, "the new receiver to handle what was sent to it", func() bool {
		return countHandled(second.Output(), 1000, after) == after
	})
	if n := countHandled(second.Output(), 0, before); n != 0 {
		t.Errorf("the new receiver handled %d of the messages the killed one held: nothing keeps them", n)
	}
}

// countHandled counts the distinct payloads from..from+n-1 an output
// says were handled.
func countHandled(out string, from, n int) int {
	seen := map[string]bool{}
	for line := range strings.Lines(out) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "handled "); ok {
			seen[p] = true
		}
	}
	c := 0
	for i := range n {
		if seen[fmt.Sprint(from+i)] {
			c++
		}
	}
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
