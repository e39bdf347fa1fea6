package mysqlcdc_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testsink"
	"github.com/courier-go/courier/message"
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
			m := message.NewBuilder([]byte(strconv.Itoa(seq))).WithPartitionKey("k0").WithHeader("seq", strconv.Itoa(seq)).Build()
			for attempt := 0; ; attempt++ {
				// The server may still be starting: retry a transaction
				// that failed before commit.
				tx, err := db.Begin()
				if err == nil {
					err = w.Send(context.Background(), tx, "orders", m)
					if err == nil {
						err = tx.Commit()
					} else {
						tx.Rollback()
					}
				}
				if err == nil {
					committed++
					break
				}
				if attempt > 100 {
					t.Fatalf("writing after the restart: %v", err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	writeSome(0, 50)
	eventually(t, "the first 50 messages", func() bool { return s.Unique() == 50 })
	restartMariaDB(t)
	writeSome(50, 100)
	eventually(t, "every message after the restart", func() bool { return s.Unique() == committed })
	checkOrder(t, s.Messages())
	t.Logf("%d messages delivered across a server restart, %d duplicates, %d relay errors",
		committed, len(s.Messages())-s.Unique(), relay.Stats().Errors)
}
