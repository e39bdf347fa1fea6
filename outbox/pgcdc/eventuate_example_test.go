package pgcdc_test

import (
	"context"
	"database/sql"
	"log"

	"github.com/courier-go/courier/broker/brokerurl"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgcdc"
	"github.com/courier-go/courier/sqldb"
)

// A relay tailing the outbox table of Eventuate Tram, eventuate.message,
// which Java services on Eventuate write, and publishing to Kafka in
// Eventuate's format, in place of Eventuate's CDC service. (It needs
// PostgreSQL and Kafka, so it is not run as a test.)
func ExampleWithEventuateTable() {
	url := "postgres://courier:courier@127.0.0.1:5432/orders"
	db, err := sql.Open("pgx", url)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	b, err := brokerurl.Open(ctx, "kafka://127.0.0.1:9092?format=eventuate")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close(ctx)

	src, err := pgcdc.NewSource(url, pgcdc.WithSlot("eventuate_outbox"), pgcdc.WithPublication("eventuate_outbox"),
		pgcdc.WithEventuateTable(outbox.EventuateTable{Schema: "eventuate"}))
	if err != nil {
		log.Fatal(err)
	}
	relay, err := outbox.NewRelay(db, sqldb.Postgres, b, outbox.WithSource(src), outbox.WithName("eventuate"))
	if err != nil {
		log.Fatal(err)
	}
	if err := relay.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
