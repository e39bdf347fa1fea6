package activemq

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/activemq/internal/stomp"
	"github.com/courier-go/courier/message"
)

var _ broker.DeadLetterBrowser = (*Broker)(nil)

// selectorBatch is how many message ids one selector names: well within
// ActiveMQ's limit on a header line.
const selectorBatch = 64

// removeIdle bounds the wait for a selected message that RemoveDeadLetters
// counted but that another client took meanwhile.
const removeIdle = 5 * time.Second

// BrowseDeadLetters reads the dead-letter channel's kept queue (the
// consumer queue of KeptSubscriberID; see Broker.DeadLetterProducer) with
// a STOMP queue browser (a subscription with ActiveMQ's browser header) on
// a connection of its own: ActiveMQ sends a copy of each message, in queue
// order, and leaves them all where they were. A letter's Position is
// ActiveMQ's message-id (JMSMessageID). Browsing a channel that never
// kept a dead letter makes ActiveMQ create its kept queue, empty, which
// then keeps what is sent to the channel like any dead-letter channel's:
// browse only dead-letter channels. See broker.DeadLetterBrowser.
func (b *Broker) BrowseDeadLetters(ctx context.Context, channel string, fn func(broker.DeadLetter) error) error {
	if err := message.ValidateChannel(channel); err != nil {
		return fmt.Errorf("activemq broker: browse dead letters: %w", err)
	}
	frames, err := b.browse(ctx, channel, "")
	if err != nil {
		return fmt.Errorf("activemq broker: browse dead letters of %q: %w", channel, err)
	}
	now := time.Now()
	for _, f := range frames {
		if err := fn(broker.DeadLetter{Message: decode(channel, f, now), Position: f.Value("message-id")}); err != nil {
			return err
		}
	}
	return nil
}

// RemoveDeadLetters consumes the letters from the kept queue with a JMS
// selector on their message-ids and acknowledges them; no other message
// is delivered, so the others keep their places. It counts the selected
// messages with a browser first, and waits for as many. See
// broker.DeadLetterBrowser.
func (b *Broker) RemoveDeadLetters(ctx context.Context, channel string, letters []broker.DeadLetter) (int, error) {
	if err := message.ValidateChannel(channel); err != nil {
		return 0, fmt.Errorf("activemq broker: remove dead letters: %w", err)
	}
	ids := make([]string, 0, len(letters))
	for _, l := range letters {
		if !strings.HasPrefix(l.Position, "ID:") {
			return 0, fmt.Errorf("activemq broker: remove dead letters of %q: %w: %q is not an ActiveMQ message-id", channel, broker.ErrInvalidPosition, l.Position)
		}
		ids = append(ids, l.Position)
	}
	removed := 0
	for len(ids) > 0 {
		batch := ids[:min(selectorBatch, len(ids))]
		ids = ids[len(batch):]
		n, err := b.removeSelected(ctx, channel, selector(batch))
		removed += n
		if err != nil {
			return removed, fmt.Errorf("activemq broker: remove dead letters of %q: %w", channel, err)
		}
	}
	return removed, nil
}

// selector is the JMS selector of the messages with the given ids.
func selector(ids []string) string {
	quoted := make([]string, len(ids))
	for i, id := range ids {
		quoted[i] = "'" + strings.ReplaceAll(id, "'", "''") + "'"
	}
	return "JMSMessageID IN (" + strings.Join(quoted, ", ") + ")"
}

// keptDestination is the STOMP destination of channel's kept queue.
func keptDestination(channel string) string {
	return "/queue/" + queueName(channel, KeptSubscriberID)
}

// browse returns the MESSAGE frames a queue browser of channel's kept
// queue receives, with the selector sel if it is not empty.
func (b *Broker) browse(ctx context.Context, channel, sel string) ([]*stomp.Frame, error) {
	c, err := stomp.Dial(ctx, b.addr, b.stompCfg)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var (
		mu     sync.Mutex
		frames []*stomp.Frame
		end    = make(chan struct{})
	)
	headers := []stomp.Header{{Name: "browser", Value: "true"}, {Name: "ack", Value: "auto"}}
	if sel != "" {
		headers = append(headers, stomp.Header{Name: "selector", Value: sel})
	}
	err = c.Subscribe(ctx, "browse", keptDestination(channel), headers, func(f *stomp.Frame) {
		if f.Value("browser") == "end" {
			close(end)
			return
		}
		mu.Lock()
		frames = append(frames, f)
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	select {
	case <-end:
	case <-c.Done():
		return nil, fmt.Errorf("the connection closed while browsing: %w", c.Err())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	return frames, nil
}

// removeSelected consumes and acknowledges the messages of channel's kept
// queue that sel selects, as many as a browser counts first, and returns
// how many it acknowledged.
func (b *Broker) removeSelected(ctx context.Context, channel, sel string) (int, error) {
	present, err := b.browse(ctx, channel, sel)
	if err != nil || len(present) == 0 {
		return 0, err
	}
	c, err := stomp.Dial(ctx, b.addr, b.stompCfg)
	if err != nil {
		return 0, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	got := make(chan string, len(present))
	headers := []stomp.Header{{Name: "ack", Value: "client-individual"}, {Name: "selector", Value: sel},
		{Name: "activemq.prefetchSize", Value: strconv.Itoa(len(present))}}
	if err := c.Subscribe(ctx, "remove", keptDestination(channel), headers, func(f *stomp.Frame) {
		select {
		case got <- f.Value("ack"):
		default: // more than counted: left unacknowledged, it goes back
		}
	}); err != nil {
		return 0, err
	}
	acked := 0
	idle := time.NewTimer(removeIdle)
	defer idle.Stop()
	for acked < len(present) {
		select {
		case ack := <-got:
			if err := c.Ack(ack); err != nil {
				return acked, fmt.Errorf("acknowledge: %w", err)
			}
			acked++
			idle.Reset(removeIdle)
		case <-idle.C:
			// Another client took the rest meanwhile.
			return acked, c.Unsubscribe(ctx, "remove")
		case <-c.Done():
			return 0, fmt.Errorf("the connection closed while removing: %w", c.Err())
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	// The server handles frames in order: once it confirms the
	// unsubscription, it has every acknowledgement.
	if err := c.Unsubscribe(ctx, "remove"); err != nil {
		return 0, err
	}
	return acked, nil
}
