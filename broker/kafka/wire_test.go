package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

// TestWireFormat reads what Send wrote with a plain Kafka client, and
// consumes what a plain Kafka client wrote: the record key is the
// partition key, ID and DESTINATION are record headers (Eventuate's header
// names, not its record format, which is a JSON envelope), and keys of one
// partition key land in one partition.
func TestWireFormat(t *testing.T) {
	c := startCluster(t, kfake.NumBrokers(1))
	b := open(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	defer b.Close(ctx)

	const ch = "wire.orders"
	sent := []*message.Message{
		message.NewBuilder([]byte("a")).WithPartitionKey("order-1").WithHeader("event-type", "OrderCreated").Build(),
		message.NewBuilder([]byte("b")).WithPartitionKey("order-1").Build(),
		message.NewBuilder([]byte("c")).Build(),
	}
	if err := b.Send(ctx, ch, sent...); err != nil {
		t.Fatal(err)
	}

	raw, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(ch), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var recs []*kgo.Record
	for len(recs) < len(sent) {
		fs := raw.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", len(recs), len(sent), err)
		}
		recs = append(recs, fs.Records()...)
	}
	byID := map[string]*kgo.Record{}
	for _, r := range recs {
		hs := map[string]string{}
		for _, h := range r.Headers {
			hs[h.Key] = string(h.Value)
		}
		if hs[message.HeaderDestination] != ch {
			t.Errorf("record %d: DESTINATION = %q, want %q", r.Offset, hs[message.HeaderDestination], ch)
		}
		if hs[message.HeaderDate] == "" {
			t.Errorf("record %d: no DATE header", r.Offset)
		}
		byID[hs[message.HeaderID]] = r
	}
	for _, m := range sent {
		r := byID[m.ID]
		if r == nil {
			t.Fatalf("no record with header ID %s", m.ID)
		}
		if string(r.Key) != m.PartitionKey() {
			t.Errorf("message %s: record key %q, want the partition key %q", m.ID, r.Key, m.PartitionKey())
		}
	}
	if p0, p1 := byID[sent[0].ID].Partition, byID[sent[1].ID].Partition; p0 != p1 {
		t.Errorf("one partition key went to partitions %d and %d", p0, p1)
	}
	if byID[sent[2].ID].Key != nil {
		t.Errorf("a message without a partition key has record key %q", byID[sent[2].ID].Key)
	}

	// A record from another producer, without Courier's headers.
	foreign := &kgo.Record{Topic: ch, Key: []byte("k9"), Value: []byte("foreign")}
	if err := raw.ProduceSync(ctx, foreign).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := make(chan *message.Message, 8)
	if _, err := b.Subscribe(ctx, "wire-reader", []string{ch}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		got <- m
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for range len(sent) + 1 {
		select {
		case m := <-got:
			if _, ok := m.Headers[message.HeaderID]; ok {
				t.Errorf("the ID header was not moved into Message.ID: %v", m.Headers)
			}
			if string(m.Payload) == "foreign" {
				if m.ID == "" || m.Destination() != ch || m.PartitionKey() != "k9" {
					t.Errorf("foreign record arrived as ID %q, headers %v", m.ID, m.Headers)
				}
			}
			ids[m.ID] = true
		case <-ctx.Done():
			t.Fatalf("got %d of %d messages", len(ids), len(sent)+1)
		}
	}
	for _, m := range sent {
		if !ids[m.ID] {
			t.Errorf("message %s not delivered with its ID", m.ID)
		}
	}
}
