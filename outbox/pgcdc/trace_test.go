package pgcdc_test

import (
	"testing"
	"time"

	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgcdc"
	"github.com/courier-go/courier/sqldb"
)

// The trace context of a request that writes a message into the outbox
// reaches the message's handler through logical replication.
func TestTraceThroughReplication(t *testing.T) {
	db := testdb.Postgres(t)
	name := names(t, db)
	src, err := pgcdc.NewSource(db.DSN, pgcdc.WithSlot(name), pgcdc.WithPublication(name), pgcdc.WithHeartbeat(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	relaytest.CheckTraced(t, db.DB, db.DB, sqldb.Postgres, src, outbox.WithName(name))
}
