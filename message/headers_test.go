package message_test

import (
	"testing"

	"github.com/courier-go/courier/message"
)

// TestHeaderNamesAreEventuates pins the header names to the strings
// Eventuate Tram uses, which the README promises: renaming a constant
// must fail here, not silently change the wire.
func TestHeaderNamesAreEventuates(t *testing.T) {
	for got, want := range map[string]string{
		message.HeaderID:                 "ID",
		message.HeaderDestination:        "DESTINATION",
		message.HeaderPartitionID:        "PARTITION_ID",
		message.HeaderDate:               "DATE",
		message.HeaderEventType:          "event-type",
		message.HeaderEventAggregateType: "event-aggregate-type",
		message.HeaderEventAggregateID:   "event-aggregate-id",
		message.HeaderCommandType:        "command_type",
		message.HeaderCommandResource:    "command_resource",
		message.HeaderCommandReplyTo:     "command_reply_to",
		message.CommandHeaderPrefix:      "command_",
		message.CommandReplyHeaderPrefix: "commandreply_",
		message.HeaderReplyType:          "reply_type",
		message.HeaderReplyOutcome:       "reply_outcome-type",
		message.HeaderReplyToMessageID:   "reply_to_message_id",
		message.ReplyOutcomeSuccess:      "SUCCESS",
		message.ReplyOutcomeFailure:      "FAILURE",
	} {
		if got != want {
			t.Errorf("header %q, want Eventuate's %q", got, want)
		}
	}
}
