// Package deadletter lists, shows, replays and purges the dead letters a
// channel keeps, on every broker whose adapter implements
// broker.DeadLetterBrowser (all of Courier's do; each says where its dead
// letters are kept and what its removal can do).
//
// A subscription sends each message its handler gave up on to its
// dead-letter channel (by default the subscriber id followed by
// broker.DeadLetterSuffix; see Channel) with headers that say why: the
// reason, the channel it came from, the subscriber id, the attempts and
// the time. List reads them without consuming them. Replay sends chosen
// ones back to the channel they came from, each with a new message ID, so
// that neither the broker's duplicate window nor an inbox takes it for the
// message that failed, and a header (message.HeaderReplayOf) naming the
// dead letter's ID; then it removes them from the dead-letter channel.
// Purge removes them without sending anything. The courier command's
// deadletter subcommand does the same from a shell.
package deadletter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/message"
)

var (
	// ErrNoFilter is returned by Replay and Purge for a Filter that
	// selects nothing explicitly: say which letters, or All.
	ErrNoFilter = errors.New("deadletter: no letters selected: give ids, a reason, a channel or all")
	// ErrNotFound is returned by Show for an ID the channel does not keep.
	ErrNotFound = errors.New("deadletter: no such dead letter")
	// ErrUnsupported is returned for a broker that cannot browse its
	// dead letters (does not implement broker.DeadLetterBrowser).
	ErrUnsupported = errors.New("deadletter: the broker cannot browse dead letters")
)

// Channel returns the default dead-letter channel of subscriberID: the one
// its subscriptions use unless broker.WithDeadLetterChannel names another.
func Channel(subscriberID string) string { return subscriberID + broker.DeadLetterSuffix }

// Letter is a dead letter with what its headers say about it.
type Letter struct {
	// ID is the dead letter's ID: that of the message given up on.
	ID string
	// Channel is the channel the message was consumed from
	// (message.HeaderDeadLetterChannel), where Replay sends it; empty if
	// the dead letter does not say.
	Channel string
	// SubscriberID is the subscriber id that gave up on it.
	SubscriberID string
	// Reason is the handler's last error.
	Reason string
	// Attempts counts the calls of the handler; 0 if not recorded.
	Attempts int
	// Time is when the message was dead-lettered; zero if not recorded.
	Time time.Time
	// Envelope is broker.EnvelopeOriginal for a dead letter that carries
	// the whole message, broker.EnvelopeBounded or EnvelopeMinimal for one
	// the broker refused as it was and that carries only part of it,
	// which Replay does not send.
	Envelope string
	// Message is the dead letter itself, headers and payload.
	Message *message.Message

	letter broker.DeadLetter
}

// Parse reads what a dead letter's headers say about it. Headers that are
// missing or do not parse leave their field empty.
func Parse(dl broker.DeadLetter) Letter {
	m := dl.Message
	if m == nil {
		m = &message.Message{}
	}
	l := Letter{
		ID:           m.ID,
		Channel:      m.Headers.Get(message.HeaderDeadLetterChannel),
		SubscriberID: m.Headers.Get(message.HeaderDeadLetterSubscriberID),
		Reason:       m.Headers.Get(message.HeaderDeadLetterReason),
		Envelope:     m.Headers.Get(message.HeaderDeadLetterEnvelope),
		Message:      m,
		letter:       dl,
	}
	if l.Envelope == "" {
		l.Envelope = broker.EnvelopeOriginal
	}
	if n, err := strconv.Atoi(m.Headers.Get(message.HeaderDeadLetterAttempts)); err == nil && n >= 0 {
		l.Attempts = n
	}
	if t, err := time.Parse(time.RFC3339Nano, m.Headers.Get(message.HeaderDeadLetterTime)); err == nil {
		l.Time = t
	}
	return l
}

// Filter selects dead letters: those matching every field that is set.
// The zero Filter selects every letter for List, and none for Replay and
// Purge, which need a field set or All, so that an empty selection never
// replays or removes everything by mistake.
type Filter struct {
	// IDs selects the letters with these IDs.
	IDs []string
	// Reason selects the letters whose reason contains it.
	Reason string
	// Channel selects the letters consumed from this channel.
	Channel string
	// All selects every letter (with the fields above, every letter they
	// select).
	All bool
}

func (f Filter) empty() bool { return len(f.IDs) == 0 && f.Reason == "" && f.Channel == "" && !f.All }

// Match reports whether f selects l.
func (f Filter) Match(l Letter) bool {
	return (len(f.IDs) == 0 || slices.Contains(f.IDs, l.ID)) &&
		(f.Reason == "" || strings.Contains(l.Reason, f.Reason)) &&
		(f.Channel == "" || l.Channel == f.Channel)
}

// browser returns b's broker.DeadLetterBrowser.
func browser(b any) (broker.DeadLetterBrowser, error) {
	if d, ok := b.(broker.DeadLetterBrowser); ok {
		return d, nil
	}
	return nil, fmt.Errorf("%w (%T)", ErrUnsupported, b)
}

// List returns the dead letters that channel keeps and f selects, oldest
// first within each of the broker's partitions, without consuming them.
// b must implement broker.DeadLetterBrowser.
func List(ctx context.Context, b any, channel string, f Filter) ([]Letter, error) {
	d, err := browser(b)
	if err != nil {
		return nil, err
	}
	var out []Letter
	err = d.BrowseDeadLetters(ctx, channel, func(dl broker.DeadLetter) error {
		if l := Parse(dl); f.Match(l) {
			out = append(out, l)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deadletter: list %q: %w", channel, err)
	}
	return out, nil
}

// Show returns the dead letter of channel with the given ID, or an error
// wrapping ErrNotFound.
func Show(ctx context.Context, b any, channel, id string) (Letter, error) {
	ls, err := List(ctx, b, channel, Filter{IDs: []string{id}})
	if err != nil {
		return Letter{}, err
	}
	if len(ls) == 0 {
		return Letter{}, fmt.Errorf("%w: %q in %q", ErrNotFound, id, channel)
	}
	return ls[0], nil
}

// Replayed is one dead letter sent back to its channel.
type Replayed struct {
	// ID is the dead letter's; NewID the message's that Replay sent.
	ID, NewID string
	// Channel is where it went.
	Channel string
}

// Skipped is a selected dead letter that Replay did not send, and why.
type Skipped struct {
	ID, Why string
}

// ReplayResult is what Replay did.
type ReplayResult struct {
	// Replayed lists the letters sent back, in the order they were sent.
	Replayed []Replayed
	// Skipped lists the selected letters that could not be sent back: one
	// that does not say which channel it came from, or that carries only
	// part of its message (a bounded or minimal envelope).
	Skipped []Skipped
	// Removed counts the replayed letters removed from the dead-letter
	// channel: all of them, unless the broker could not remove some
	// (each adapter says what it removes), which then stay listed.
	Removed int
}

// Broker is what Replay needs: to browse and remove dead letters, and to
// send.
type Broker interface {
	broker.Producer
	broker.DeadLetterBrowser
}

// Replay sends the dead letters of channel that f selects back to the
// channel each came from, in the order List returns them, and then removes
// them from channel. Each replayed message has a new ID, the headers of the
// original (its partition key, content type, trace context...) without the
// dead-letter headers, message.HeaderReplayOf set to the dead letter's ID,
// and the original payload.
//
// If a Send fails, Replay removes the letters it already sent (so that a
// second Replay does not send them twice) and returns the result so far
// with the error. A failure between a Send and the removal leaves a letter
// both replayed and listed: replaying it again sends it again, with another
// new ID.
func Replay(ctx context.Context, b Broker, channel string, f Filter) (ReplayResult, error) {
	var res ReplayResult
	if f.empty() {
		return res, ErrNoFilter
	}
	letters, err := List(ctx, b, channel, f)
	if err != nil {
		return res, err
	}
	var sent []broker.DeadLetter
	remove := func() error {
		if len(sent) == 0 {
			return nil
		}
		n, err := b.RemoveDeadLetters(ctx, channel, sent)
		res.Removed += n
		if err != nil {
			return fmt.Errorf("deadletter: replay %q: remove the replayed letters: %w", channel, err)
		}
		return nil
	}
	for _, l := range letters {
		switch {
		case l.Channel == "":
			res.Skipped = append(res.Skipped, Skipped{l.ID, "the dead letter does not say which channel it came from (no " + message.HeaderDeadLetterChannel + " header)"})
			continue
		case l.Envelope != broker.EnvelopeOriginal:
			res.Skipped = append(res.Skipped, Skipped{l.ID, "the dead letter carries only part of the message (a " + l.Envelope + " envelope)"})
			continue
		}
		m := replayMessage(l)
		if err := b.Send(ctx, l.Channel, m); err != nil {
			return res, errors.Join(fmt.Errorf("deadletter: replay %s to %q: %w", l.ID, l.Channel, err), remove())
		}
		res.Replayed = append(res.Replayed, Replayed{ID: l.ID, NewID: m.ID, Channel: l.Channel})
		sent = append(sent, l.letter)
	}
	return res, remove()
}

// replayMessage is the message Replay sends for l.
func replayMessage(l Letter) *message.Message {
	h := make(message.Headers, len(l.Message.Headers)+1)
	for k, v := range l.Message.Headers {
		switch {
		case strings.HasPrefix(k, "dead_letter_"), k == message.HeaderID, k == message.HeaderDestination, k == message.HeaderDate:
			continue
		}
		h[k] = v
	}
	h[message.HeaderReplayOf] = l.ID
	return &message.Message{ID: message.NewID(), Headers: h, Payload: l.Message.Payload}
}

// Purge removes the dead letters of channel that f selects and returns how
// many it removed, which is fewer than it selected where the broker could
// not remove some (each adapter says what it removes).
func Purge(ctx context.Context, b any, channel string, f Filter) (int, error) {
	if f.empty() {
		return 0, ErrNoFilter
	}
	d, err := browser(b)
	if err != nil {
		return 0, err
	}
	letters, err := List(ctx, d, channel, f)
	if err != nil || len(letters) == 0 {
		return 0, err
	}
	dls := make([]broker.DeadLetter, len(letters))
	for i, l := range letters {
		dls[i] = l.letter
	}
	n, err := d.RemoveDeadLetters(ctx, channel, dls)
	if err != nil {
		return n, fmt.Errorf("deadletter: purge %q: %w", channel, err)
	}
	return n, nil
}
