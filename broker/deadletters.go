package broker

import (
	"context"
	"errors"

	"github.com/courier-go/courier/message"
)

// DeadLetter is one message kept in a dead-letter channel, as a
// DeadLetterBrowser reads it.
type DeadLetter struct {
	// Message is the dead letter: the ID, headers and payload of the
	// message that was given up on, with the dead-letter headers
	// (message.HeaderDeadLetterReason and the others).
	Message *message.Message
	// Position is where the broker keeps it, in the adapter's own terms
	// (a stream sequence, a partition and offset, a server's message
	// id), for RemoveDeadLetters; it is opaque to everything else.
	Position string
}

// DeadLetterBrowser is implemented by brokers that can read the dead
// letters a channel keeps without consuming them, and remove chosen ones:
// what package broker/deadletter lists, replays and purges through. Each
// adapter says where its dead letters are kept (a stream, a topic, a
// queue of their own) and what its removal can and cannot do.
type DeadLetterBrowser interface {
	// BrowseDeadLetters calls fn with each dead letter kept in channel,
	// oldest first within each of the broker's partitions or shards, as
	// the channel stood when the call began (letters that arrive
	// meanwhile may or may not be seen). It leaves them where they are,
	// in their order. It returns fn's first error, which ends the walk.
	// A channel that keeps nothing, or does not exist, has no letters.
	BrowseDeadLetters(ctx context.Context, channel string, fn func(DeadLetter) error) error
	// RemoveDeadLetters removes the given letters, as BrowseDeadLetters
	// returned them, from channel and returns how many it removed. A
	// letter that is no longer there is not an error, and not counted.
	RemoveDeadLetters(ctx context.Context, channel string, letters []DeadLetter) (int, error)
}

// ErrInvalidPosition is returned by RemoveDeadLetters for a letter whose
// Position the adapter did not make: one from another broker, or made up.
var ErrInvalidPosition = errors.New("broker: not a dead letter's position")
