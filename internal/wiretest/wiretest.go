// Package wiretest checks, for the tests of the broker adapters' wire
// formats, that a message arrives as it was sent.
package wiretest

import (
	"maps"
	"testing"

	"github.com/courier-go/courier/message"
)

// CheckArrived fails the test unless got, the message a consumer of
// channel received, is sent as every adapter delivers it: the same ID and
// headers, but DESTINATION set to channel and DATE to date if sent had
// none.
func CheckArrived(t testing.TB, sent, got *message.Message, channel, date string) {
	t.Helper()
	want := maps.Clone(sent.Headers)
	delete(want, message.HeaderID)
	want[message.HeaderDestination] = channel
	if _, ok := want[message.HeaderDate]; !ok {
		want[message.HeaderDate] = date
	}
	if got.ID != sent.ID || !maps.Equal(got.Headers, want) || string(got.Payload) != string(sent.Payload) {
		t.Fatalf("sent %q %q (%d bytes), received %q %q (%d bytes)", sent.ID, sent.Headers, len(sent.Payload), got.ID, got.Headers, len(got.Payload))
	}
}
