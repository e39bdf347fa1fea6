package mysqlcdc_test

import (
	"log/slog"
	"os"
	"os/exec"
	"testing"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testenv"
	"github.com/courier-go/courier/outbox"
)

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
	testenv.RequireRestarts(t, "MariaDB")
	if _, err := exec.LookPath("mariadb-admin"); err != nil || os.Geteuid() != 0 {
		t.Skip("needs root and mariadb-admin to restart the local MariaDB")
	}
	db := testdb.MySQL(t)
	relaytest.RestartMidStream(t, db, func(p broker.Producer) func() uint64 {
		relay, _ := newRelay(t, db, p, outbox.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
		run(t, relay)
		return func() uint64 { return relay.Stats().Errors }
	}, func() { restartMariaDB(t) })
}
