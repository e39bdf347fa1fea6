package pgcdc_test

import (
	"context"
	"database/sql"
	"log"
	"os"
	"os/signal"

	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgcdc"
	"github.com/courier-go/courier/sqldb"
)

// A relay publishing a PostgreSQL outbox from the log until interrupted.
// Run several copies for high availability: one streams from the slot,
// the others stand by.
func Example() {
	url := "postgres://courier:courier@127.0.0.1:5432/orders"
	db, err := sql.Open("pgx", url)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	b, _ := memory.New()
	defer b.Close(context.Background())

	src, err := pgcdc.NewSource(url, pgcdc.WithSlot("orders_outbox"), pgcdc.WithPublication("orders_outbox"))
	if err != nil {
		log.Fatal(err)
	}
	relay, err := outbox.NewRelay(db, sqldb.Postgres, b, outbox.WithSource(src), outbox.WithName("orders"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := relay.Run(ctx); err != nil {
		log.Fatal(err)
	}
	log.Printf("published %d messages, confirmed up to %s", relay.Stats().Published, relay.Stats().Position)
}
