package mysqlcdc_test

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
	"github.com/courier-go/courier/outbox/mysqlcdc"
	"github.com/courier-go/courier/sqldb"
)

// restartEnv enables the tests that restart the database server. They
// disturb every other test using the server, so the test script runs them
// on their own, after the others.
const restartEnv = "COURIER_RESTART_TESTS"

// restartMariaDB stops the local server and starts it again with the
// service script.
func restartMariaDB(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("mariadb-admin", "--protocol=socket", "-uroot", "shutdown").CombinedOutput(); err != nil {
		t.Fatalf("stopping MariaDB: %v\n%s", err, out)
	}
	if out, err := exec.Command("../../scripts/services/mariadb.sh").CombinedOutput(); err != nil {
		t.Fatalf("starting MariaDB: %v\n%s", err, out)
	}
}

func TestDatabaseRestartMidStream(t *testing.T) {
	if os.Getenv(restartEnv) != "1" {
		t.Skip("restarts MariaDB; set " + restartEnv + "=1 (scripts/test runs it on its own)")
	}
	if _, err := exec.LookPath("mariadb-admin"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and mariadb-admin to restart the local MariaDB")
	}
	db := testdb.MySQL(t)
	s := testsink.New(0)
	srv := httptest.NewServer(s)
	defer srv.Close()
	relay, err := mysqlcdc.New(db.DB, db.DSN, testsink.Producer{URL: srv.URL},
		options(mysqlcdc.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))...)
	if err != nil {
		t.Fatal(err)
	}
	run(t, relay)
	w := outbox.NewWriter(sqldb.MySQL)
	committed := 0
	writeSome := func(from, to int) {
		for seq := from; seq < to; seq++ {
			relaytest.WriteOrderRetrying(t, db.DB, w, seq)
			committed++
		}
	}
	writeSome(0, 50)
	relaytest.Eventually(t, "the first 50 messages", func() bool { return s.Unique() == 50 })
	restartMariaDB(t)
	writeSome(50, 100)
	relaytest.Eventually(t, "every message after the restart", func() bool { return s.Unique() == committed })
	relaytest.CheckOrder(t, s.Messages())
	t.Logf("%d messages delivered across a server restart, %d duplicates, %d relay errors",
		committed, len(s.Messages())-s.Unique(), relay.Stats().Errors)
}
