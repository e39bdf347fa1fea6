package mysqlcdc_test

import (
	"log/slog"
	"testing"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testenv"
	"github.com/courier-go/courier/internal/testserver"
	"github.com/courier-go/courier/outbox"
)

func TestDatabaseRestartMidStream(t *testing.T) {
	testenv.RequireRestarts(t, "MariaDB")
	db := testdb.MySQL(t)
	restart := testserver.Database(t, db)
	relaytest.RestartMidStream(t, db, func(p broker.Producer) func() uint64 {
		relay, _ := newRelay(t, db, p, outbox.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
		run(t, relay)
		return func() uint64 { return relay.Stats().Errors }
	}, restart)
}
