package kafka_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/kafka"
	"github.com/courier-go/courier/message"
)

// TestRemoveDeadLettersHeadOnly checks what Kafka's removal can do: a
// partition's oldest letters go, a letter behind one that stays does not
// (and is not counted), and a position Kafka did not make is refused.
func TestRemoveDeadLettersHeadOnly(t *testing.T) {
	c := startCluster(t)
	b := open(t, c, kafka.WithPartitions(1))
	t.Cleanup(func() { b.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const dlc = "kafka-head-only.dead-letter"
	var sent []string
	for range 4 {
		m := message.NewBuilder([]byte("x")).Build()
		if err := broker.DeadLetters(b).Send(ctx, dlc, m); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m.ID)
	}
	browse := func() []broker.DeadLetter {
		t.Helper()
		var out []broker.DeadLetter
		if err := b.BrowseDeadLetters(ctx, dlc, func(l broker.DeadLetter) error { out = append(out, l); return nil }); err != nil {
			t.Fatalf("BrowseDeadLetters: %v", err)
		}
		return out
	}
	ids := func(ls []broker.DeadLetter) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.Message.ID)
		}
		return out
	}
	all := browse()
	if got := ids(all); !slices.Equal(got, sent) {
		t.Fatalf("browsed %v, want %v", got, sent)
	}
	// The first, second and fourth: the fourth stays behind the third.
	n, err := b.RemoveDeadLetters(ctx, dlc, []broker.DeadLetter{all[0], all[1], all[3]})
	if err != nil || n != 2 {
		t.Fatalf("RemoveDeadLetters = %d, %v; want 2", n, err)
	}
	if got := ids(browse()); !slices.Equal(got, sent[2:]) {
		t.Fatalf("after removal: %v, want %v", got, sent[2:])
	}
	// Removing a letter that is gone removes nothing.
	if n, err := b.RemoveDeadLetters(ctx, dlc, all[:1]); err != nil || n != 0 {
		t.Errorf("removing a removed letter = %d, %v; want 0", n, err)
	}
	if _, err := b.RemoveDeadLetters(ctx, dlc, []broker.DeadLetter{{Position: "17"}}); !errors.Is(err, broker.ErrInvalidPosition) {
		t.Errorf("a made-up position: %v, want ErrInvalidPosition", err)
	}
}
