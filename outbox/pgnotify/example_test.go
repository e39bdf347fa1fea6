package pgnotify_test

import (
	"context"
	"database/sql"
	"log"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the pgx driver

	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgnotify"
	"github.com/courier-go/courier/sqldb"
)

// A polling relay that publishes as soon as a transaction commits outbox
// rows, not at its next poll: install the trigger, then give the relay a
// Listener. Every writer of the outbox pays for the trigger at commit (see
// Install); without it, leave out both steps and the relay polls every
// outbox.DefaultPollInterval. A deployment that stops listening, or moves
// to the tailing relay (outbox/pgcdc), removes the trigger with Uninstall.
func Example() {
	ctx := context.Background()
	db, err := sql.Open("pgx", "postgres://courier:courier@localhost:5432/orders")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := sqldb.Migrate(ctx, db, sqldb.Postgres); err != nil {
		log.Fatal(err)
	}
	if err := pgnotify.Install(ctx, db); err != nil {
		log.Fatal(err)
	}
	b, err := memory.New() // the service's broker
	if err != nil {
		log.Fatal(err)
	}
	relay, err := outbox.NewRelay(db, sqldb.Postgres, b, outbox.WithWakeup(pgnotify.New(db)))
	if err != nil {
		log.Fatal(err)
	}
	if err := relay.Run(ctx); err != nil { // until ctx ends
		log.Fatal(err)
	}
}
