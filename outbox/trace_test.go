package outbox_test

import (
	"testing"

	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
)

// The trace context of a request that writes a message into the outbox
// reaches the message's handler through the table poller, on every
// dialect.
func TestTraceThroughPoller(t *testing.T) {
	for _, d := range testdb.Dialects {
		t.Run(d.Name(), func(t *testing.T) {
			db := testdb.Open(t, d)
			relaytest.CheckTraced(t, db.DB, db.DB, d, nil)
		})
	}
}
