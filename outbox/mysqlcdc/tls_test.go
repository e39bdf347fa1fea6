package mysqlcdc_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testserver"
	"github.com/courier-go/courier/outbox/mysqlcdc"
	"github.com/courier-go/courier/sqldb"
	"github.com/courier-go/courier/sqldb/sqlurl"
)

// TestTailsOverTLS runs the tailing relay with its queries and its binary
// log stream over TLS, from a mysql:// URL with a CA the test made and a
// client certificate, as a user the server lets in with a certificate
// only (REQUIRE X509): it publishes what commits, so both connections
// were encrypted.
func TestTailsOverTLS(t *testing.T) {
	db := testdb.MySQL(t)
	cfg, err := mysql.ParseDSN(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	ca := testserver.InstallTLS(t, testserver.MariaDBTLS)
	client := ca.Client(t, "client", testserver.TLSUser)
	raw := "mysql://" + testserver.TLSUser + ":courier@" + cfg.Addr + "/" + cfg.DBName + "?" +
		url.Values{"cacertfile": {ca.CertFile}, "certfile": {client.CertFile}, "keyfile": {client.KeyFile}}.Encode()
	tlsDB, target, err := sqlurl.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer tlsDB.Close()

	src, err := mysqlcdc.NewSource(target.DSN, mysqlcdc.WithHeartbeat(200*time.Millisecond), mysqlcdc.WithStoreInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	relaytest.CheckPublishes(t, tlsDB, db.DB, sqldb.MySQL, src, 10)
}
