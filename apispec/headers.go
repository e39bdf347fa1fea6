package apispec

import (
	"github.com/courier-go/courier/message"
)

// headerSchema describes the headers of a message of type t: the standard
// ones every broker sets (ID, DESTINATION, DATE), the content type, the
// partition key, and those of its kind, with the type header fixed to
// t's name. Other headers are allowed.
func headerSchema(t messageType, contentType string) *jsonSchema {
	str := func(description string) *jsonSchema {
		return &jsonSchema{Type: []string{"string"}, Description: description}
	}
	fixed := func(value, description string) *jsonSchema {
		s := str(description)
		s.Const, s.HasConst = value, true
		return s
	}
	props := map[string]*jsonSchema{
		message.HeaderID:          str("The message ID: two 16-digit hexadecimal numbers, time ordered."),
		message.HeaderDestination: str("The channel the message was sent to."),
		message.HeaderDate:        str("When the message was sent (RFC 1123, GMT)."),
		message.HeaderContentType: fixed(contentType, "The payload's encoding; absent means application/json."),
		message.HeaderPartitionID: str("The partition key: messages of one key are consumed in order."),
	}
	required := []string{message.HeaderID, message.HeaderDestination, message.HeaderDate}
	props[t.kind.TypeHeader()] = fixed(t.name, "The message type.")
	required = append(required, t.kind.TypeHeader())
	switch t.kind {
	case Event:
		props[message.HeaderEventAggregateType] = str("The type of the aggregate that published the event: the channel.")
		props[message.HeaderEventAggregateID] = str("The aggregate's ID, also the partition key.")
		required = append(required, message.HeaderPartitionID, message.HeaderEventAggregateType, message.HeaderEventAggregateID)
	case Command:
		props[message.HeaderCommandReplyTo] = str("The channel to reply to; absent for a one-way command.")
		props[message.HeaderCommandResource] = str("The resource the command acts on.")
	case Reply:
		props[message.HeaderReplyOutcome] = outcomeSchema(t.outcome)
		props[message.HeaderReplyToMessageID] = str("The ID of the command replied to.")
		required = append(required, message.HeaderReplyOutcome, message.HeaderReplyToMessageID)
	}
	return &jsonSchema{Type: []string{"object"}, Properties: props, Required: required}
}

func outcomeSchema(outcome string) *jsonSchema {
	s := &jsonSchema{Type: []string{"string"}, Description: "SUCCESS or FAILURE."}
	if outcome != "" {
		s.Const, s.HasConst = outcome, true
	} else {
		s.Enum = []any{message.ReplyOutcomeSuccess, message.ReplyOutcomeFailure}
	}
	return s
}

// widenOutcome lets a reply type declared as a success and as a failure
// carry either outcome.
func widenOutcome(headers *jsonSchema, outcome string) {
	p := headers.Properties[message.HeaderReplyOutcome]
	if p.HasConst && p.Const != outcome {
		*p = *outcomeSchema("")
	}
}
