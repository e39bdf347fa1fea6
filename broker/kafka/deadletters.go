package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

var _ broker.DeadLetterBrowser = (*Broker)(nil)

// BrowseDeadLetters reads the dead-letter channel's topic, where dead
// letters stay for the topic's retention, with a client of its own that
// belongs to no consumer group, from each partition's start offset to the
// end offset it had when the call began: no subscriber id's committed
// offset moves. Letters come oldest first within each partition, the
// partitions interleaved. Each letter's Position is "partition/offset".
// See broker.DeadLetterBrowser.
func (b *Broker) BrowseDeadLetters(ctx context.Context, channel string, fn func(broker.DeadLetter) error) error {
	if err := b.checkDeadLetterChannel(channel); err != nil {
		return fmt.Errorf("kafka: browse dead letters: %w", err)
	}
	fail := func(err error) error {
		return fmt.Errorf("kafka: browse dead letters of %q: %w", channel, b.sendErr(err))
	}
	starts, ends, err := b.bounds(ctx, channel)
	if err != nil || len(starts) == 0 {
		if err != nil {
			return fail(err)
		}
		return nil
	}
	from := make(map[int32]kgo.Offset)
	left := make(map[int32]int64) // the end offset of each partition still to read
	for p, start := range starts {
		if end := ends[p]; start < end {
			from[p] = kgo.NewOffset().At(start)
			left[p] = end
		}
	}
	if len(left) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(b.clientOptions(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{channel: from}),
		kgo.FetchMaxWait(time.Second),
		kgo.FetchMaxPartitionBytes(b.cfg.maxRecordBytes()),
	)...)
	if err != nil {
		return fail(err)
	}
	defer cl.Close()
	for len(left) > 0 {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = err
			}
		})
		if ferr != nil {
			return fail(ferr)
		}
		var stop error
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if stop != nil || !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			stop = fn(broker.DeadLetter{Message: decode(r), Position: position(r.Partition, r.Offset)})
		})
		if stop != nil {
			return stop
		}
	}
	return nil
}

// RemoveDeadLetters removes the given letters from the dead-letter
// channel's topic as far as Kafka can: it deletes no record alone, only a
// partition's oldest records (DeleteRecords moves the partition's start
// offset). So it removes, in each partition, the letters from the oldest
// one kept up to the first one not given, and leaves the given letters
// after that one, which it does not count: replaying or purging every
// letter removes them all, and choosing letters removes those at the head
// of their partitions. See broker.DeadLetterBrowser.
func (b *Broker) RemoveDeadLetters(ctx context.Context, channel string, letters []broker.DeadLetter) (int, error) {
	if err := b.checkDeadLetterChannel(channel); err != nil {
		return 0, fmt.Errorf("kafka: remove dead letters: %w", err)
	}
	chosen := make(map[int32]map[int64]bool)
	for _, l := range letters {
		p, o, err := parsePosition(l.Position)
		if err != nil {
			return 0, fmt.Errorf("kafka: remove dead letters of %q: %w", channel, err)
		}
		if chosen[p] == nil {
			chosen[p] = make(map[int64]bool)
		}
		chosen[p][o] = true
	}
	fail := func(err error) error {
		return fmt.Errorf("kafka: remove dead letters of %q: %w", channel, b.sendErr(err))
	}
	starts, _, err := b.bounds(ctx, channel)
	if err != nil {
		return 0, fail(err)
	}
	to := make(kadm.Offsets)
	removed := 0
	for p, offsets := range chosen {
		start, ok := starts[p]
		if !ok {
			continue
		}
		at := start
		for offsets[at] {
			at++
		}
		if at > start {
			to.Add(kadm.Offset{Topic: channel, Partition: p, At: at})
			removed += int(at - start)
		}
	}
	if len(to) == 0 {
		return 0, nil
	}
	resps, err := b.adm.DeleteRecords(ctx, to)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return 0, fail(err)
	}
	return removed, nil
}

// checkDeadLetterChannel validates a dead-letter channel's name as a topic.
func (b *Broker) checkDeadLetterChannel(channel string) error {
	if err := message.ValidateChannel(channel); err != nil {
		return err
	}
	return validateTopic(channel)
}

// bounds returns the start and end offsets of each partition of topic:
// none for a topic that does not exist.
func (b *Broker) bounds(ctx context.Context, topic string) (starts, ends map[int32]int64, err error) {
	collect := func(listed kadm.ListedOffsets, err error) (map[int32]int64, error) {
		if err == nil {
			err = listed.Error()
		}
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		out := make(map[int32]int64)
		listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return out, nil
	}
	if starts, err = collect(b.adm.ListStartOffsets(ctx, topic)); err != nil || starts == nil {
		return nil, nil, err
	}
	if ends, err = collect(b.adm.ListEndOffsets(ctx, topic)); err != nil {
		return nil, nil, err
	}
	return starts, ends, nil
}

// position is a record's Position: "partition/offset".
func position(partition int32, offset int64) string {
	return strconv.FormatInt(int64(partition), 10) + "/" + strconv.FormatInt(offset, 10)
}

// parsePosition reads a Position that position made.
func parsePosition(s string) (int32, int64, error) {
	ps, os, ok := strings.Cut(s, "/")
	p, err1 := strconv.ParseInt(ps, 10, 32)
	o, err2 := strconv.ParseInt(os, 10, 64)
	if !ok || err1 != nil || err2 != nil || p < 0 || o < 0 {
		return 0, 0, fmt.Errorf("%w: %q is not a partition/offset", broker.ErrInvalidPosition, s)
	}
	return int32(p), o, nil
}
