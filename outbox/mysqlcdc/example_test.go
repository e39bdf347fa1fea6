package mysqlcdc_test

import (
	"context"
	"database/sql"
	"log"
	"os"
	"os/signal"

	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/mysqlcdc"
	"github.com/courier-go/courier/sqldb"
)

// A relay publishing a MariaDB outbox until interrupted. Run several
// copies for high availability: one streams, the others stand by.
func Example() {
	dsn := "courier:courier@tcp(127.0.0.1:3306)/orders"
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	b, _ := memory.New()
	defer b.Close(context.Background())

	src, err := mysqlcdc.NewSource(dsn)
	if err != nil {
		log.Fatal(err)
	}
	relay, err := outbox.NewRelay(db, sqldb.MySQL, b, outbox.WithSource(src), outbox.WithName("orders"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := relay.Run(ctx); err != nil {
		log.Fatal(err)
	}
	log.Printf("published %d messages", relay.Stats().Published)
}
