package testserver

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/courier-go/courier/internal/testcert"
	"github.com/courier-go/courier/internal/testdb"
)

// TLSServer is a local server whose TLS a set-up script under
// scripts/services configures with files the tests replace.
type TLSServer struct {
	name   string
	dir    string // ca.pem, server.pem, server-key.pem
	owner  string // the user the server reads them as
	script string
	reload func(ctx context.Context, ca *testcert.CA) error
}

// The servers the set-up scripts configure for TLS: each serves TLS on
// its usual port (RabbitMQ on 5671) and lets its user courier_tls in with
// a client certificate whose common name is courier_tls (PostgreSQL, by
// the certificate alone; MariaDB, with the password "courier" too), and
// RabbitMQ's guest with any certificate the CA signed.
var (
	PostgresTLS = TLSServer{name: "PostgreSQL", dir: "/etc/postgresql/" + PostgresVersion + "/" + PostgresCluster + "/courier-tls",
		owner: "postgres", script: "postgres.sh", reload: reloadPostgres}
	MariaDBTLS = TLSServer{name: "MariaDB", dir: "/etc/mysql/courier-tls", owner: "mysql", script: "mariadb.sh",
		reload: reloadMariaDB}
	RabbitMQTLS = TLSServer{name: "RabbitMQ", dir: "/etc/rabbitmq/courier-tls", owner: "rabbitmq", script: "rabbitmq.sh",
		reload: reloadRabbitMQ}
)

// TLSUser is the user the servers let in by client certificate.
const TLSUser = "courier_tls"

// InstallTLS makes a CA of the test's own and a server certificate it
// signed for the local addresses, installs them as the files of s's TLS,
// has s read them again, and returns the CA: s then presents the new
// certificate and accepts the client certificates the CA signs.
//
// The files are shared by the tests of every package, which go test may
// run at once: InstallTLS holds a lock on them, across processes, until
// the test ends. Where s is not configured for TLS or the files cannot be
// written (not root), the test is skipped naming the set-up script, or
// fails under CI.
func InstallTLS(t testing.TB, s TLSServer) *testcert.CA {
	t.Helper()
	how := fmt.Sprintf("run scripts/services/%s as root, which configures %s for TLS", s.script, s.name)
	if _, err := os.Stat(filepath.Join(s.dir, "server.pem")); err != nil {
		cannot(t, "%s is not configured for TLS (%v): %s", s.name, err, how)
	}
	owner, err := user.Lookup(s.owner)
	if err != nil {
		cannot(t, "no user %s: %s", s.owner, how)
	}
	lock, err := os.OpenFile(filepath.Join(s.dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		cannot(t, "cannot write %s's TLS files (%v): %s", s.name, err, how)
	}
	t.Cleanup(func() { lock.Close() })
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			t.Fatalf("lock of %s's TLS files: %v", s.name, err)
		}
	}
	t.Cleanup(func() { syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) })

	ca := testcert.NewCA(t)
	server := ca.Server(t, "server-"+s.owner)
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	for name, data := range map[string][]byte{"ca.pem": ca.CertPEM(), "server.pem": server.CertPEM, "server-key.pem": server.KeyPEM} {
		if err := writeOwned(filepath.Join(s.dir, name), data, uid, gid); err != nil {
			cannot(t, "cannot write %s's TLS files (%v): %s", s.name, err, how)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.reload(ctx, ca); err != nil {
		cannot(t, "%s did not take the new TLS files: %v (%s)", s.name, err, how)
	}
	return ca
}

// writeOwned writes data to path through a temporary file renamed over
// it, so that the server never reads half a file, owned by uid and gid
// and readable by them only.
func writeOwned(path string, data []byte, uid, gid int) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Chown(tmp, uid, gid); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// reloadPostgres has PostgreSQL read its configuration again, then waits
// until a TLS handshake meets the CA's certificate: the server reloads in
// the background.
func reloadPostgres(ctx context.Context, ca *testcert.CA) error {
	base := os.Getenv(testdb.PostgresEnv)
	if base == "" {
		base = testdb.PostgresDefault
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fmt.Errorf("pg_reload_conf: %w", err)
	}
	addr := "127.0.0.1:5432"
	for {
		err := postgresHandshake(ctx, addr, ca)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still presents another certificate: %w", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// postgresHandshake asks the server at addr for TLS (an SSLRequest) and
// verifies its certificate with the CA.
func postgresHandshake(ctx context.Context, addr string, ca *testcert.CA) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), 80877103)
	if _, err := conn.Write(req); err != nil {
		return err
	}
	answer := make([]byte, 1)
	if _, err := io.ReadFull(conn, answer); err != nil {
		return err
	}
	if answer[0] != 'S' {
		return fmt.Errorf("the server refuses TLS (%q)", answer)
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	return tc.HandshakeContext(ctx)
}

// reloadMariaDB has MariaDB read its TLS files again (FLUSH SSL), which
// it does before answering.
func reloadMariaDB(ctx context.Context, _ *testcert.CA) error {
	base := os.Getenv(testdb.MySQLEnv)
	if base == "" {
		base = testdb.MySQLDefault
	}
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		return err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	if _, err := db.ExecContext(ctx, "FLUSH SSL"); err != nil {
		return fmt.Errorf("FLUSH SSL: %w", err)
	}
	return nil
}

// reloadRabbitMQ has RabbitMQ read its TLS files again: Erlang's TLS
// caches PEM files by name until told to forget them.
func reloadRabbitMQ(ctx context.Context, _ *testcert.CA) error {
	return run(ctx, "rabbitmqctl", "-q", "eval", "ssl:clear_pem_cache().")
}
