package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/internal/eventuate/eventuatetest"
	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// TestEventuateTable: on Eventuate's own table, made by Eventuate's schema
// files, in both id modes, on both databases, a row written by Eventuate's
// INSERT and rows written by Courier's Writer are published by Courier's
// polling relay as Eventuate's CDC publishes them (a row Eventuate wrote
// as published is not), and marked published.
func TestEventuateTable(t *testing.T) {
	for _, d := range []*sqldb.Dialect{sqldb.Postgres, sqldb.MySQL} {
		t.Run(d.Name(), func(t *testing.T) {
			eventuatetest.Modes(t, func(t *testing.T, dbIDs bool) {
				db := testdb.Open(t, d) // the relay's lease table
				table := outbox.EventuateTable{Schema: testdb.Eventuate(t, db, dbIDs), DatabaseIDs: dbIDs, OutboxID: 5}
				eventuatetest.CheckRelay(t, db.DB, d, table, func(b broker.Producer) *outbox.Relay {
					relay, _ := runRelay(t, db.DB, d, b, outbox.PollEventuateTable(table), outbox.WithKeepPublished(), outbox.WithPollInterval(20*time.Millisecond))
					return relay
				})
				relaytest.Eventually(t, "every row marked published", func() bool {
					var left int
					db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+table.TableName()+" WHERE published = 0").Scan(&left)
					return left == 0
				})
			})
		})
	}
}
