package sqlurl

import (
	"context"
	"database/sql"
	"net/url"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/testcert"
	"github.com/courier-go/courier/internal/testserver"
)

// connects opens raw and reports whether a query goes through, and over
// TLS: query returns whether the connection it runs on is encrypted.
func connects(t *testing.T, raw, query string) (encrypted bool, err error) {
	t.Helper()
	db, _, err := Open(raw)
	if err != nil {
		return false, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v sql.NullString
	err = db.QueryRowContext(ctx, query).Scan(&v)
	return v.Valid && v.String != "" && v.String != "false", err
}

// refusedTLS checks that raw does not connect.
func refusedTLS(t *testing.T, raw, query, why string) {
	t.Helper()
	if _, err := connects(t, raw, query); err == nil {
		t.Errorf("connected %s", why)
	} else {
		t.Logf("%s: %v", why, err)
	}
}

// TestPostgresOverTLS installs certificates the test makes on the local
// PostgreSQL, which scripts/services/postgres.sh configures for TLS, and
// connects with sslmode=verify-full, the test's CA and a client
// certificate, as a role that may log in with a certificate only: the
// connection is encrypted. Without the client certificate, with another
// CA's, without the CA, or without TLS, it is refused.
func TestPostgresOverTLS(t *testing.T) {
	ca := testserver.InstallTLS(t, testserver.PostgresTLS)
	client := ca.Client(t, "client", testserver.TLSUser)
	stranger := testcert.NewCA(t).Client(t, "stranger", testserver.TLSUser)
	base := "postgres://" + testserver.TLSUser + "@127.0.0.1:5432/courier?"
	params := func(kv ...string) string {
		q := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return base + q.Encode()
	}
	const query = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
	encrypted, err := connects(t, params("sslmode", "verify-full", "sslrootcert", ca.CertFile, "sslcert", client.CertFile, "sslkey", client.KeyFile), query)
	if err != nil || !encrypted {
		t.Fatalf("over TLS with a client certificate: encrypted %v, %v", encrypted, err)
	}
	refusedTLS(t, params("sslmode", "verify-full", "sslrootcert", ca.CertFile), query, "without a client certificate")
	refusedTLS(t, params("sslmode", "verify-full", "sslrootcert", ca.CertFile, "sslcert", stranger.CertFile, "sslkey", stranger.KeyFile), query,
		"with another CA's client certificate")
	refusedTLS(t, params("sslmode", "verify-full", "sslcert", client.CertFile, "sslkey", client.KeyFile), query, "without the CA")
	refusedTLS(t, params("sslmode", "disable"), query, "without TLS")
}

// TestMySQLOverTLS installs certificates the test makes on the local
// MariaDB, which scripts/services/mariadb.sh configures for TLS, and
// connects through a mysql:// URL with the test's CA and a client
// certificate, as a user who must present one (REQUIRE X509): the
// connection is encrypted. Without the client certificate, without the
// CA, or without TLS, it is refused.
func TestMySQLOverTLS(t *testing.T) {
	ca := testserver.InstallTLS(t, testserver.MariaDBTLS)
	client := ca.Client(t, "client", testserver.TLSUser)
	base := "mysql://" + testserver.TLSUser + ":courier@127.0.0.1:3306/courier"
	const query = "SELECT variable_value FROM information_schema.session_status WHERE variable_name = 'Ssl_version'"
	files := url.Values{"cacertfile": {ca.CertFile}, "certfile": {client.CertFile}, "keyfile": {client.KeyFile}}
	encrypted, err := connects(t, base+"?"+files.Encode(), query)
	if err != nil || !encrypted {
		t.Fatalf("over TLS with a client certificate: encrypted %v, %v", encrypted, err)
	}
	refusedTLS(t, base+"?cacertfile="+url.QueryEscape(ca.CertFile), query, "without a client certificate")
	refusedTLS(t, base+"?tls=true&certfile="+url.QueryEscape(client.CertFile)+"&keyfile="+url.QueryEscape(client.KeyFile), query, "without the CA")
	refusedTLS(t, base, query, "without TLS")
	if _, err := Parse(base + "?tls=skip-verify&cacertfile=ca.pem"); err == nil {
		t.Error("tls=skip-verify with a CA file accepted")
	}
}
