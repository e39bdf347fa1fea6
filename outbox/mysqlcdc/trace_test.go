package mysqlcdc_test

import (
	"testing"
	"time"

	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/outbox/mysqlcdc"
	"github.com/courier-go/courier/sqldb"
)

// The trace context of a request that writes a message into the outbox
// reaches the message's handler through the binary log.
func TestTraceThroughBinlog(t *testing.T) {
	db := testdb.MySQL(t)
	src, err := mysqlcdc.NewSource(db.DSN, mysqlcdc.WithHeartbeat(200*time.Millisecond), mysqlcdc.WithStoreInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	relaytest.CheckTraced(t, db.DB, db.DB, sqldb.MySQL, src)
}
