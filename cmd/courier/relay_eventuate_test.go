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
// table, made by Eventuate's schema files, in database-id mode, and marks
// the rows published as Eventuate's CDC does.
func TestRelayCommandPollsEventuateTable(t *testing.T) {
	db := testdb.Postgres(t)
	schema := testdb.Eventuate(t, db, true)
	r := startRelay(t, &relayCommand{}, "-db", db.DSN, "-broker", "memory://", "-log-format", "json",
		"-eventuate-schema", schema, "-eventuate-db-ids", "-eventuate-outbox-id", "3", "-poll-interval", "10ms")
	waitFor(t, r.addr, "/readyz", "ready, leader")

	ctx := context.Background()
	w := outbox.NewWriter(db.Dialect, outbox.WithEventuateTable(outbox.EventuateTable{Schema: schema, DatabaseIDs: true, OutboxID: 3}))
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
	var marked int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + schema + ".message WHERE published = 1").Scan(&marked); err != nil {
		t.Fatal(err)
	}
	if marked != 25 {
		t.Errorf("%d rows marked published, want 25", marked)
	}
	r.wait(t)
}
