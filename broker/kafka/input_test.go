package kafka_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/kafka"
	"github.com/courier-go/courier/message"
)

func TestOpenUnreachable(t *testing.T) {
	ln := freePort(t) // nothing listens there any more
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	_, err := kafka.Open(ctx, []string{"127.0.0.1:" + itoa(ln)})
	if err == nil {
		t.Fatal("Open of an address where nothing listens succeeded")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Open took %v, beyond its context's deadline", d)
	}
	if !strings.Contains(err.Error(), "connect to 127.0.0.1") {
		t.Errorf("error does not say what failed: %v", err)
	}
	t.Logf("%v (after %v)", err, time.Since(start).Round(time.Millisecond))
}

func TestOpenHangingServerRespectsDeadline(t *testing.T) {
	c := startCluster(t, kfake.NumBrokers(1))
	// The cluster accepts connections but never answers.
	c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		time.Sleep(5 * time.Second)
		return nil, errors.New("no answer"), true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := kafka.Open(ctx, c.ListenAddrs())
	if err == nil {
		t.Fatal("Open succeeded against a server that never answers")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open took %v with a 500ms deadline", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open = %v, want context.DeadlineExceeded", err)
	}
}

func TestSASL(t *testing.T) {
	c := startCluster(t, kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "courier", "right"))
	login := func(pass string) kafka.Option {
		return kafka.WithClientOptions(kgo.SASL(scram.Auth{User: "courier", Pass: pass}.AsSha256Mechanism()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := kafka.Open(ctx, c.ListenAddrs(), login("wrong")); err == nil {
		t.Fatal("Open with a wrong password succeeded")
	} else {
		t.Logf("wrong password: %v", err)
	}
	if _, err := kafka.Open(ctx, c.ListenAddrs()); err == nil {
		t.Fatal("Open without credentials succeeded on a SASL cluster")
	}
	b := open(t, c, login("right"))
	defer b.Close(ctx)
	got := make(chan *message.Message, 1)
	if _, err := b.Subscribe(ctx, "sasl-sub", []string{"sasl.ch"}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		got <- m
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, "sasl.ch", message.New([]byte("hello"))); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m.Payload) != "hello" {
			t.Errorf("payload %q", m.Payload)
		}
	case <-ctx.Done():
		t.Fatal("no message over an authenticated connection")
	}
}

func TestInvalidOptions(t *testing.T) {
	ctx := context.Background()
	for name, opts := range map[string][]kafka.Option{
		"zero partitions":       {kafka.WithPartitions(0)},
		"zero replication":      {kafka.WithReplicationFactor(0)},
		"negative limits":       {kafka.WithLimits(message.Limits{MaxPayloadBytes: -1})},
		"huge limits":           {kafka.WithLimits(message.Limits{MaxPayloadBytes: 1 << 30})},
		"tiny commit interval":  {kafka.WithCommitInterval(time.Microsecond)},
		"tiny session timeout":  {kafka.WithSessionTimeout(time.Millisecond)},
		"heartbeat too slow":    {kafka.WithSessionTimeout(6 * time.Second), kafka.WithHeartbeatInterval(3 * time.Second)},
		"empty topic config":    {kafka.WithTopicConfig("", "1")},
		"nil client option":     {kafka.WithClientOptions(nil)},
		"tiny heartbeat period": {kafka.WithHeartbeatInterval(time.Microsecond)},
	} {
		if _, err := kafka.Open(ctx, []string{"127.0.0.1:1"}, opts...); err == nil || !strings.HasPrefix(err.Error(), "kafka: ") {
			t.Errorf("%s: Open = %v, want a configuration error", name, err)
		}
	}
	for _, seeds := range [][]string{nil, {""}, {"a:1,b:2"}, {"kafka://a:1"}} {
		if _, err := kafka.Open(ctx, seeds); err == nil {
			t.Errorf("Open(%q) succeeded", seeds)
		}
	}
}

func TestTopicNames(t *testing.T) {
	c := startCluster(t, kfake.NumBrokers(1))
	b := open(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer b.Close(ctx)
	longest := strings.Repeat("t", message.MaxNameLength) // Kafka's limit
	if err := b.Send(ctx, longest, message.New(nil)); err != nil {
		t.Errorf("Send to a %d-character channel: %v", len(longest), err)
	}
	ok := broker.HandlerFunc(func(context.Context, *message.Message) error { return nil })
	for _, bad := range []string{longest + "t", ".", "..", "a/b", "a:b", "ä", "__consumer_offsets", "__x"} {
		if err := b.Send(ctx, bad, message.New(nil)); !errors.Is(err, message.ErrInvalidChannel) {
			t.Errorf("Send to %q = %v, want message.ErrInvalidChannel", bad, err)
		}
		if _, err := b.Subscribe(ctx, "names", []string{bad}, ok); !errors.Is(err, broker.ErrInvalidSubscription) {
			t.Errorf("Subscribe to %q = %v, want broker.ErrInvalidSubscription", bad, err)
		}
		if _, err := b.Subscribe(ctx, bad, []string{"names.ch"}, ok); !errors.Is(err, broker.ErrInvalidSubscription) {
			t.Errorf("Subscribe as %q = %v, want broker.ErrInvalidSubscription", bad, err)
		}
	}
	if _, err := b.Subscribe(ctx, "names", []string{"names.ch"}, ok, broker.WithDeadLetterChannel("__dead")); !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Errorf("Subscribe with dead-letter channel __dead = %v, want broker.ErrInvalidSubscription", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
