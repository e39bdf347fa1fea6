package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/courier-go/courier/discovery/etcd/etcdserver"
)

// registryCommand runs a single-node etcd for development. In production an
// etcd cluster replaces it: the registrar, router and services use the same
// client and keys, only the endpoints change.
type registryCommand struct{}

func (c *registryCommand) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: courier registry [flags]

Runs a single-node etcd server as the service registry, for development and
tests. Instances register under /courier/services/<service>/<id>; clients,
courier registrar and courier router connect with -registry etcd://<listen>.
In production point them at an etcd cluster instead: same client, same keys.

By default anyone who reaches -listen may read and write. -users turns
authentication on: a JSON file of users,
  [{"name":"root","password":"..."},
   {"name":"orders","password":"..."},
   {"name":"router","password":"...","read_only":true}]
("root" is required; the others may register, or only read with
read_only); clients then name a user in the URL, etcd://orders:...@host,
or present a client certificate whose common name is the user.
-tls-cert and -tls-key serve TLS only (clients add cacertfile=... to the
URL), and -tls-client-ca requires client certificates (certfile=...&
keyfile=...). The users are created at the first start on -dir.

`)
		fs.PrintDefaults()
	}
	dir := fs.String("dir", filepath.Join(os.TempDir(), "courier-registry"), "data directory (kept across restarts)")
	listen := fs.String("listen", "127.0.0.1:2379", "client address (host:port; port 0 picks one)")
	peer := fs.String("peer", "127.0.0.1:2380", "raft peer address (host:port; port 0 picks one)")
	name := fs.String("name", "courier", "member name")
	etcdLog := fs.String("etcd-log-level", "error", "etcd's own log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	usersFile := fs.String("users", "", "JSON file of the users: turns authentication on (see above)")
	var tf serverTLSFlags
	tf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := tf.check(); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	var users []etcdserver.User
	if *usersFile != "" {
		data, err := os.ReadFile(*usersFile)
		if err != nil {
			return fmt.Errorf("registry: -users: %w", err)
		}
		if users, err = parseUsers(data); err != nil {
			return fmt.Errorf("registry: -users %s: %w", *usersFile, err)
		}
	}
	log, err := newLogger(*logFormat, *logLevel, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("registry: data directory: %w", err)
	}
	srv, err := etcdserver.Start(ctx, etcdserver.Config{Dir: *dir, ClientAddr: *listen, PeerAddr: *peer, Name: *name, LogLevel: *etcdLog,
		CertFile: tf.cert, KeyFile: tf.key, ClientCAFile: tf.clientCA, Users: users})
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer srv.Close()
	log.Info("registry: serving", "endpoint", srv.Endpoint(), "dir", *dir, "tls", tf.tls(), "client_certificates", tf.clientCA != "",
		"authentication", len(users) > 0)
	fmt.Fprintln(stdout, srv.Endpoint())
	select {
	case <-ctx.Done():
		log.Info("registry: shutting down")
		return nil
	case err := <-srv.Err():
		return fmt.Errorf("registry: etcd failed: %w", err)
	}
}

// parseUsers reads the -users file: a JSON array of users, each with a
// name and a password, and read_only for those who may not register.
func parseUsers(data []byte) ([]etcdserver.User, error) {
	var in []struct {
		Name     string `json:"name"`
		Password string `json:"password"`
		ReadOnly bool   `json:"read_only"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		// The error of a value of the wrong type quotes the value, which
		// may be a password.
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: want a %s", cmp.Or(te.Field, "the users"), te.Type)
		}
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	users := make([]etcdserver.User, len(in))
	for i, u := range in {
		users[i] = etcdserver.User{Name: u.Name, Password: u.Password, ReadOnly: u.ReadOnly}
	}
	return users, etcdserver.CheckUsers(users)
}
