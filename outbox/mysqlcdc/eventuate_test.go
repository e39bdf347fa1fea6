package mysqlcdc_test

import (
	"testing"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/internal/eventuate/eventuatetest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/mysqlcdc"
	"github.com/courier-go/courier/sqldb"
)

// TestTailsEventuateTable: the relay tails Eventuate's table, made by
// Eventuate's schema files in a database of its own, in both id modes: a
// row written by Eventuate's INSERT and rows written by Courier's Writer
// are published as Eventuate's CDC publishes them; a row Eventuate wrote
// as published, and the starting row of the database-id schema, are not.
func TestTailsEventuateTable(t *testing.T) {
	eventuatetest.Modes(t, func(t *testing.T, dbIDs bool) {
		db := testdb.MySQL(t)
		table := outbox.EventuateTable{Schema: testdb.Eventuate(t, db, dbIDs), DatabaseIDs: dbIDs, OutboxID: 5}
		eventuatetest.CheckRelay(t, db.DB, sqldb.MySQL, table, func(b broker.Producer) *outbox.Relay {
			relay, _ := newRelayOf(t, db, b, []mysqlcdc.Option{mysqlcdc.WithEventuateTable(table)})
			run(t, relay)
			return relay
		})
	})
}
