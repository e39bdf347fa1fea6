package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokerurl"
	"github.com/courier-go/courier/broker/deadletter"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/testserver"
	"github.com/courier-go/courier/message"
)

// The deadletter command on every broker: against the real servers
// (RabbitMQ, ActiveMQ), an embedded NATS server, a Kafka cluster in the
// process and the in-memory broker.
func TestDeadLetterCommandMemory(t *testing.T) {
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	// Every open returns the one in-memory broker, which outlives them.
	shared := func(context.Context, string) (broker.Broker, error) { return unclosable{b}, nil }
	testDeadLetterCommand(t, "memory://", shared)
}

func TestDeadLetterCommandNATS(t *testing.T) {
	testDeadLetterCommand(t, "nats+embedded://"+filepath.Join(t.TempDir(), "nats"), nil)
}

func TestDeadLetterCommandKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	testDeadLetterCommand(t, "kafka://"+strings.Join(c.ListenAddrs(), ","), nil)
}

func TestDeadLetterCommandRabbitMQ(t *testing.T) {
	testDeadLetterCommand(t, testserver.AMQPURL(t), nil)
}

func TestDeadLetterCommandActiveMQ(t *testing.T) {
	testDeadLetterCommand(t, testserver.ActiveMQURL(t), nil)
}

// unclosable is a broker whose Close leaves it open.
type unclosable struct {
	*memory.Broker
}

func (unclosable) Close(context.Context) error { return nil }

// testDeadLetterCommand makes three dead letters on the broker at url,
// then lists, shows, replays and purges them with the command, which opens
// the broker itself (through open, when not nil), and checks that the
// replayed messages reach the subscriber id with new ids and a link to the
// letters. The letters share a partition key and are removed oldest first,
// which every broker's removal can do.
func testDeadLetterCommand(t *testing.T, url string, open func(context.Context, string) (broker.Broker, error)) {
	if open == nil {
		open = brokerurl.Open
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	suffix := fmt.Sprintf("%06x", rand.Uint32()&0xffffff)
	channel, sub := "dlcmd-orders-"+suffix, "dlcmd-sub-"+suffix

	var (
		mu       sync.Mutex
		healed   bool
		replayed []*message.Message
	)
	handler := broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if !healed {
			return broker.Permanent(fmt.Errorf("refused: %s", m.Headers.Get("fail")))
		}
		replayed = append(replayed, m)
		return nil
	})
	b, err := open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Subscribe(ctx, sub, []string{channel}, handler, broker.WithMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i, reason := range []string{"alpha", "bravo", "charlie"} {
		m := message.NewBuilder(fmt.Appendf(nil, `{"order":%d}`, i)).WithPartitionKey("order-7").WithHeader("fail", reason).Build()
		if err := b.Send(ctx, channel, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	for {
		ls, err := deadletter.List(ctx, b, deadletter.Channel(sub), deadletter.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) == len(ids) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d dead letters, want %d", len(ls), len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The command opens the broker itself: an embedded NATS server
	// cannot have its directory open twice.
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}

	cmd := func(code int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		all := append([]string{args[0], "-broker", url, "-subscriber", sub}, args[1:]...)
		err := (&deadLetterCommand{openBroker: open}).run(ctx, all, &out, &errOut)
		if got := exitCode(err); got != code {
			t.Fatalf("courier deadletter %s: exit %d (%v), want %d\n%s%s", strings.Join(args, " "), got, err, code, out.String(), errOut.String())
		}
		return out.String()
	}
	out := cmd(0, "list")
	for i, id := range ids {
		if !regexp.MustCompile(regexp.QuoteMeta(id) + `\s+` + channel + `\s+1\s+\S+\s+refused: ` + []string{"alpha", "bravo", "charlie"}[i]).MatchString(out) {
			t.Errorf("list does not show %s with its channel, attempts and reason:\n%s", id, out)
		}
	}
	var j letterJSON
	if err := json.Unmarshal([]byte(cmd(0, "list", "-json", "-reason", "bravo")), &j); err != nil || j.ID != ids[1] || j.Payload == nil || *j.Payload != `{"order":1}` {
		t.Errorf("list -json -reason bravo = %+v, %v", j, err)
	}
	if out := cmd(0, "show", "-id", ids[2]); !strings.Contains(out, `{"order":2}`) || !strings.Contains(out, "fail: charlie") {
		t.Errorf("show:\n%s", out)
	}
	cmd(1, "show", "-id", "no-such-letter")
	cmd(2, "purge", "-all") // no -yes: nothing goes
	cmd(2, "replay")        // nothing selected
	out = cmd(0, "replay", "-id", ids[0])
	if !strings.Contains(out, "replayed "+ids[0]+" to \""+channel+"\" as ") {
		t.Errorf("replay:\n%s", out)
	}
	cmd(0, "purge", "-reason", "bravo", "-yes")
	if out := cmd(0, "list"); strings.Contains(out, ids[0]) || strings.Contains(out, ids[1]) || !strings.Contains(out, ids[2]) {
		t.Errorf("after replaying the first and purging the second, list shows:\n%s", out)
	}
	cmd(0, "replay", "-all")
	if out := cmd(0, "list"); strings.Count(out, "\n") != 1 {
		t.Errorf("after replaying all, list shows:\n%s", out)
	}

	// The subscriber id gets the replayed messages, the first and the
	// third, with new ids and a link to their letters.
	mu.Lock()
	healed = true
	mu.Unlock()
	if b, err = open(ctx, url); err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.WithoutCancel(ctx))
	defer func() {
		// What the test made stays on a shared server otherwise.
		cctx := context.WithoutCancel(ctx)
		if r, ok := b.(broker.SubscriberRemover); ok {
			r.RemoveSubscriber(cctx, sub, []string{channel})
		}
		if r, ok := b.(broker.ChannelRemover); ok {
			r.RemoveChannel(cctx, channel)
			r.RemoveChannel(cctx, deadletter.Channel(sub))
		}
	}()
	if s, err = b.Subscribe(ctx, sub, []string{channel}, handler); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.WithoutCancel(ctx))
	for {
		mu.Lock()
		n := len(replayed)
		mu.Unlock()
		if n >= 2 || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var links []string
	for _, m := range replayed {
		if slices.Contains(ids, m.ID) {
			t.Errorf("a replayed message kept its letter's id %s", m.ID)
		}
		links = append(links, m.Headers.Get(message.HeaderReplayOf))
	}
	if want := []string{ids[0], ids[2]}; !slices.Equal(links, want) {
		t.Errorf("replayed messages link to %v, want %v", links, want)
	}
}

// TestDeadLetterCommandRedactsSecrets: an error reaching the broker does
// not show the URL's password.
func TestDeadLetterCommandRedactsSecrets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"deadletter", "list", "-broker", "nats://courier:s3cr3t-pw@127.0.0.1:1", "-subscriber", "x", "-timeout", "5s"}, &out, &errOut)
	if exitCode(err) != 1 || strings.Contains(err.Error(), "s3cr3t-pw") || strings.Contains(errOut.String(), "s3cr3t-pw") {
		t.Fatalf("exit %d, error %v, stderr %q", exitCode(err), err, errOut.String())
	}
}
