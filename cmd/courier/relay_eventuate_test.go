package main

import (
	"context"
	"strconv"
	"testing"

	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
)

// `courier relay -eventuate-schema` publishes Eventuate Tram's outbox
// table, made by Eventuate's schema files: polling it on PostgreSQL in
// database-id mode, marking rows published as Eventuate's polling CDC
// does, and tailing the binary log on MariaDB in application-id mode.
func TestRelayCommandPublishesEventuateTable(t *testing.T) {
	t.Run("poll/postgres/database-id", func(t *testing.T) {
		db := testdb.Postgres(t)
		table := outbox.EventuateTable{Schema: testdb.Eventuate(t, db, true), DatabaseIDs: true, OutboxID: 3}
		testRelayCommandEventuate(t, db, db.DSN, table, "-mode", "poll", "-eventuate-db-ids", "-eventuate-outbox-id", "3", "-poll-interval", "10ms")
		var marked int
		if err := db.QueryRow("SELECT COUNT(*) FROM " + table.TableName() + " WHERE published = 1").Scan(&marked); err != nil {
			t.Fatal(err)
		}
		if marked != 25 {
			t.Errorf("%d rows marked published, want 25", marked)
		}
	})
	t.Run("tail/mysql/application-id", func(t *testing.T) {
		db, dbURL, _ := mysqlOutbox(t)
		table := outbox.EventuateTable{Schema: testdb.Eventuate(t, db, false)}
		testRelayCommandEventuate(t, db, dbURL, table, "-mode", "tail")
	})
}

// testRelayCommandEventuate runs `courier relay` on table with args,
// writes 25 messages into it with Courier's Writer and waits for the
// metrics to count them published.
func testRelayCommandEventuate(t *testing.T, db *testdb.DB, dbURL string, table outbox.EventuateTable, args ...string) {
	r := startRelay(t, &relayCommand{}, append([]string{"-db", dbURL, "-broker", "memory://", "-eventuate-schema", table.Schema}, args...)...)
	waitFor(t, r.addr, "/readyz", "ready, leader")
	ctx := context.Background()
	w := outbox.NewWriter(db.Dialect, outbox.WithEventuateTable(table))
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		if err := w.Send(ctx, tx, "orders", message.NewBuilder([]byte(strconv.Itoa(i))).Build()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	r.eventually(t, "the published counter to reach 25", func() bool { return r.metric(t, "courier_relay_published_total") == 25 })
	r.wait(t)
}
