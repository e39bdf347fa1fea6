package pgcdc_test

import (
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"

	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testsink"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgcdc"
	"github.com/courier-go/courier/sqldb"
)

// RestartEnv enables the tests that restart the database server. They
// disturb every other test using the server, so the test script runs them
// on their own, after the others.
const restartEnv = "COURIER_RESTART_TESTS"

func TestDatabaseRestartMidStream(t *testing.T) {
	if os.Getenv(restartEnv) != "1" {
		t.Skip("restarts PostgreSQL; set " + restartEnv + "=1 (scripts/test runs it on its own)")
	}
	restart := exec.Command("pg_ctlcluster", "15", "main", "restart")
	if _, err := exec.LookPath("pg_ctlcluster"); err != nil {
		t.Skip("pg_ctlcluster not found: " + err.Error())
	}
	db := testdb.Postgres(t)
	name := names(t, db)
	s := testsink.New(0)
	srv := httptest.NewServer(s)
	defer srv.Close()
	relay, err := pgcdc.New(db.DB, db.DSN, testsink.Producer{URL: srv.URL}, options(name, pgcdc.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))...)
	if err != nil {
		t.Fatal(err)
	}
	run(t, relay)
	w := outbox.NewWriter(sqldb.Postgres)
	committed := 0
	writeSome := func(from, to int) {
		for seq := from; seq < to; seq++ {
			relaytest.WriteOrderRetrying(t, db.DB, w, seq)
			committed++
		}
	}
	writeSome(0, 50)
	relaytest.Eventually(t, "the first 50 messages", func() bool { return s.Unique() == 50 })
	if out, err := restart.CombinedOutput(); err != nil {
		t.Fatalf("restarting PostgreSQL: %v\n%s", err, out)
	}
	writeSome(50, 100)
	relaytest.Eventually(t, "every message after the restart", func() bool { return s.Unique() == committed })
	relaytest.CheckOrder(t, s.Messages())
	t.Logf("%d messages delivered across a server restart, %d duplicates, %d relay errors",
		committed, len(s.Messages())-s.Unique(), relay.Stats().Errors)
}
