package mysqlcdc_test

import (
	"context"
	"database/sql"
	"log"

	"github.com/courier-go/courier/broker/brokerurl"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/mysqlcdc"
	"github.com/courier-go/courier/sqldb"
)

// A relay tailing the binary log for the outbox table of Eventuate Tram in
// database-id mode, eventuate.message, and publishing to RabbitMQ in
// Eventuate's format and topology, in place of Eventuate's CDC service.
// Its position and lease live in the database of the DSN. (It needs
// MySQL or MariaDB and RabbitMQ, so it is not run as a test.)
func ExampleWithEventuateTable() {
	dsn := "courier:courier@tcp(127.0.0.1:3306)/relay"
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	b, err := brokerurl.Open(ctx, "amqp://guest:guest@127.0.0.1:5672/?format=eventuate")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close(ctx)

	src, err := mysqlcdc.NewSource(dsn, mysqlcdc.WithEventuateTable(outbox.EventuateTable{Schema: "eventuate", DatabaseIDs: true, OutboxID: 1}))
	if err != nil {
		log.Fatal(err)
	}
	relay, err := outbox.NewRelay(db, sqldb.MySQL, b, outbox.WithSource(src), outbox.WithName("eventuate"))
	if err != nil {
		log.Fatal(err)
	}
	if err := relay.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
