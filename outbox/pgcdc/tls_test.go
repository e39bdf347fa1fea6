package pgcdc_test

import (
	"database/sql"
	"net/url"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/internal/testserver"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/pgcdc"
	"github.com/courier-go/courier/sqldb"
)

// TestTailsOverTLS runs the tailing relay with its queries and its
// replication connection over TLS (sslmode=verify-full, a CA the test
// made, a client certificate), as a role that may log in and replicate
// with a certificate only: it publishes what commits, and the server
// reports the slot's connection encrypted.
func TestTailsOverTLS(t *testing.T) {
	db := testdb.Postgres(t)
	name := names(t, db)
	ca := testserver.InstallTLS(t, testserver.PostgresTLS)
	client := ca.Client(t, "client", testserver.TLSUser)
	u, err := url.Parse(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(testserver.TLSUser)
	q := u.Query()
	q.Set("sslmode", "verify-full")
	q.Set("sslrootcert", ca.CertFile)
	q.Set("sslcert", client.CertFile)
	q.Set("sslkey", client.KeyFile)
	u.RawQuery = q.Encode()
	tlsDB, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer tlsDB.Close()

	src, err := pgcdc.NewSource(u.String(), pgcdc.WithSlot(name), pgcdc.WithPublication(name), pgcdc.WithHeartbeat(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	relaytest.CheckPublishes(t, tlsDB, db.DB, sqldb.Postgres, src, 10, outbox.WithName(name))

	var user string
	var encrypted bool
	// Seen as the relay's role, which may see its own sessions.
	err = tlsDB.QueryRow(`SELECT a.usename, s.ssl FROM pg_replication_slots r JOIN pg_stat_ssl s ON s.pid = r.active_pid
		JOIN pg_stat_activity a ON a.pid = r.active_pid WHERE r.slot_name = $1`, name).Scan(&user, &encrypted)
	if err != nil || user != testserver.TLSUser || !encrypted {
		t.Fatalf("the slot's connection: user %q, encrypted %v, %v", user, encrypted, err)
	}
}
