package outbox_test

import (
	"context"
	"database/sql"
	"log"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/courier-go/courier/broker/brokerurl"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// A Go service writes into the outbox of Eventuate Tram, eventuate.message
// in database-id mode, made by Eventuate's schema files, which a Java
// service on Eventuate shares; Courier's relay publishes the rows of both
// to Kafka in Eventuate's format, as Eventuate's CDC would. (It needs
// PostgreSQL and Kafka, so it is not run as a test.)
func ExampleWithEventuateTable() {
	ctx := context.Background()
	db, err := sql.Open("pgx", "postgres://app@127.0.0.1:5432/app")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	// The relay's lease table; Eventuate's table is Eventuate's to create.
	if err := sqldb.Migrate(ctx, db, sqldb.Postgres); err != nil {
		log.Fatal(err)
	}
	table := outbox.EventuateTable{DatabaseIDs: true, OutboxID: 1}

	w := outbox.NewWriter(sqldb.Postgres, outbox.WithEventuateTable(table))
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	m := message.NewBuilder([]byte(`{"orderId":4}`)).WithPartitionKey("4").
		WithHeader(message.HeaderEventType, "com.example.OrderCreated").Build()
	if err := w.Send(ctx, tx, "com.example.Order", m); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}

	b, err := brokerurl.Open(ctx, "kafka://127.0.0.1:9092?format=eventuate")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close(ctx)
	relay, err := outbox.NewRelay(db, sqldb.Postgres, b, outbox.PollEventuateTable(table), outbox.WithKeepPublished())
	if err != nil {
		log.Fatal(err)
	}
	if err := relay.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
