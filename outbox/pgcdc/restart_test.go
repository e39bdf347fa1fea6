package pgcdc_test

import (
	"log/slog"
	"os/exec"
	"testing"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testenv"
	"github.com/courier-go/courier/outbox"
)

func TestDatabaseRestartMidStream(t *testing.T) {
	testenv.RequireRestarts(t, "PostgreSQL")
	restart := exec.Command("pg_ctlcluster", "15", "main", "restart")
	if _, err := exec.LookPath("pg_ctlcluster"); err != nil {
		t.Skip("pg_ctlcluster not found: " + err.Error())
	}
	db := testdb.Postgres(t)
	name := names(t, db)
	relaytest.RestartMidStream(t, db, func(p broker.Producer) func() uint64 {
		relay := newRelay(t, db, p, name, nil, outbox.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
		run(t, relay)
		return func() uint64 { return relay.Stats().Errors }
	}, func() {
		if out, err := restart.CombinedOutput(); err != nil {
			t.Fatalf("restarting PostgreSQL: %v\n%s", err, out)
		}
	})
}
