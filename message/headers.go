package message

// Standard header names: Eventuate Tram's names (see the package
// documentation for what that does and does not make compatible).
const (
	// HeaderID carries the message ID on the wire.
	HeaderID = "ID"
	// HeaderDestination is the channel a message was sent to.
	HeaderDestination = "DESTINATION"
	// HeaderPartitionID is the partition (shard) key. Messages with the same
	// key are delivered in order to one consumer instance at a time.
	HeaderPartitionID = "PARTITION_ID"
	// HeaderDate is the time the message was sent, in RFC 1123 form with a
	// GMT zone, as Eventuate writes it.
	HeaderDate = "DATE"
	// HeaderContentType names the payload's encoding, e.g. application/json.
	HeaderContentType = "content-type"
)

// Domain event headers.
const (
	HeaderEventType          = "event-type"
	HeaderEventAggregateType = "event-aggregate-type"
	HeaderEventAggregateID   = "event-aggregate-id"
)

// Command headers.
const (
	HeaderCommandType     = "command_type"
	HeaderCommandResource = "command_resource"
	HeaderCommandReplyTo  = "command_reply_to"
	// HeaderCommandDestination is the channel a command was sent to, as
	// Eventuate's CommandMessageHeaders.DESTINATION ("command_" +
	// "_destination") names it; a reply echoes it as
	// commandreply__destination.
	HeaderCommandDestination = "command__destination"
	// CommandHeaderPrefix starts every command header; a reply echoes each of
	// them with CommandReplyHeaderPrefix instead.
	CommandHeaderPrefix      = "command_"
	CommandReplyHeaderPrefix = "commandreply_"
)

// Reply headers.
const (
	HeaderReplyType        = "reply_type"
	HeaderReplyOutcome     = "reply_outcome-type"
	HeaderReplyToMessageID = "reply_to_message_id"

	// ReplyOutcomeSuccess and ReplyOutcomeFailure are the values of
	// HeaderReplyOutcome.
	ReplyOutcomeSuccess = "SUCCESS"
	ReplyOutcomeFailure = "FAILURE"
)

// Dead-letter headers, added when a consumer gives up on a message and moves
// it to a dead-letter channel.
const (
	// HeaderDeadLetterReason is the error text of the last failed attempt.
	HeaderDeadLetterReason = "dead_letter_reason"
	// HeaderDeadLetterChannel is the channel the message was consumed from.
	HeaderDeadLetterChannel = "dead_letter_channel"
	// HeaderDeadLetterSubscriberID is the subscriber id that gave up.
	HeaderDeadLetterSubscriberID = "dead_letter_subscriber_id"
	// HeaderDeadLetterAttempts is how many times the handler was called.
	HeaderDeadLetterAttempts = "dead_letter_attempts"
	// HeaderDeadLetterTime is when the message was dead-lettered (RFC 3339).
	HeaderDeadLetterTime = "dead_letter_time"
	// HeaderDeadLetterEnvelope is set on a dead letter the broker refused
	// as it was and that went in a smaller envelope: "bounded" (original
	// headers that were not carriable, or over a budget, dropped, and the
	// payload cut) or "minimal" (no original headers but the ID and
	// partition key, no payload). The reason lists the dropped headers.
	HeaderDeadLetterEnvelope = "dead_letter_envelope"
	// HeaderDeadLetterPayloadBytes is the size of the original payload,
	// set when the envelope carries only part of it.
	HeaderDeadLetterPayloadBytes = "dead_letter_payload_bytes"
	// HeaderDeadLetterPayloadSHA256 is the hex SHA-256 of the original
	// payload, set with HeaderDeadLetterPayloadBytes.
	HeaderDeadLetterPayloadSHA256 = "dead_letter_payload_sha256"
	// HeaderReplayOf is set on a dead letter sent back to its channel
	// (package broker/deadletter): the ID of the dead letter, which is
	// the ID of the message that was given up on. The replayed message
	// has an ID of its own, so that a broker's or an inbox's duplicate
	// detection does not take it for the original.
	HeaderReplayOf = "replay_of"
)
