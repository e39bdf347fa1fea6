package pgcdc_test

import (
	"testing"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/internal/eventuate/eventuatetest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgcdc"
	"github.com/courier-go/courier/sqldb"
)

// TestTailsEventuateTable: the relay tails Eventuate's table, made by
// Eventuate's schema files, in both id modes: a row written by Eventuate's
// INSERT and rows written by Courier's Writer are published as Eventuate's
// CDC publishes them, and a row Eventuate wrote as published is not.
func TestTailsEventuateTable(t *testing.T) {
	eventuatetest.Modes(t, func(t *testing.T, dbIDs bool) {
		db := testdb.Postgres(t)
		name := names(t, db)
		table := outbox.EventuateTable{Schema: testdb.Eventuate(t, db, dbIDs), DatabaseIDs: dbIDs, OutboxID: 5}
		eventuatetest.CheckRelay(t, db.DB, sqldb.Postgres, table, func(b broker.Producer) *outbox.Relay {
			relay := newRelay(t, db, b, name, []pgcdc.Option{pgcdc.WithEventuateTable(table)})
			run(t, relay)
			return relay
		})
	})
}
