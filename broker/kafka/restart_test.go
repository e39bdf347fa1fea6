package kafka_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestClusterRestart restarts the cluster while messages are being sent
// and consumed: every message whose Send succeeded is handled.
//
// kfake keeps its logs, groups and committed offsets in a data directory
// and reloads them when started again on it, so the restart is a real one:
// every connection drops, the group coordinator forgets the live members,
// and the producer and consumer reconnect to a new process state on the
// same address. It is a clean shutdown of the only broker (like a rolling
// restart of a single-node cluster); surviving an unclean crash is what
// acks=all and the replication factor buy on a real cluster.
func TestClusterRestart(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.GroupMinSessionTimeout(time.Second)}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	var cmu sync.Mutex
	t.Cleanup(func() {
		cmu.Lock()
		defer cmu.Unlock()
		c.Close()
	})
	b := open(t, c)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	const ch = "restart.orders"
	var hmu sync.Mutex
	handled := map[string]bool{}
	// A slow handler, so that messages stored before the restart are
	// consumed only after it.
	sub, err := b.Subscribe(context.Background(), "restart-sub", []string{ch}, broker.HandlerFunc(func(ctx context.Context, m *message.Message) error {
		time.Sleep(50 * time.Millisecond)
		hmu.Lock()
		handled[m.ID] = true
		hmu.Unlock()
		return nil
	}), broker.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close(context.Background()) })

	// Send one message at a time, remembering those acknowledged.
	var acked sync.Map
	var nAcked, nFailed atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m := message.NewBuilder([]byte(fmt.Sprint(i))).WithPartitionKey(fmt.Sprint("k", i%8)).Build()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			err := b.Send(ctx, ch, m)
			cancel()
			if err != nil {
				nFailed.Add(1)
				continue
			}
			acked.Store(m.ID, true)
			nAcked.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	})
	waitFor(t, "messages before the restart", func() bool { return nAcked.Load() >= 100 })

	cmu.Lock()
	c.Close()
	before := nAcked.Load()
	hmu.Lock()
	handledBefore := len(handled)
	hmu.Unlock()
	if handledBefore >= int(before) {
		t.Fatalf("all %d messages were handled before the restart; the test needs a backlog", before)
	}
	time.Sleep(500 * time.Millisecond) // sends fail or wait meanwhile
	c, err = kfake.NewCluster(opts...)
	cmu.Unlock()
	if err != nil {
		t.Fatalf("restarting the cluster: %v", err)
	}
	waitFor(t, "messages after the restart", func() bool { return nAcked.Load() >= before+100 })
	close(stop)
	wg.Wait()

	waitFor(t, "every acknowledged message handled", func() bool {
		hmu.Lock()
		defer hmu.Unlock()
		missing := 0
		acked.Range(func(id, _ any) bool {
			if !handled[id.(string)] {
				missing++
			}
			return true
		})
		return missing == 0
	})
	t.Logf("%d messages acknowledged (%d before the restart, of which %d were handled before it), %d sends failed during the outage",
		nAcked.Load(), before, handledBefore, nFailed.Load())
}

// waitFor polls cond for up to 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
