package main

import (
	"context"
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(*logFormat, *logLevel, stderr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("registry: data directory: %w", err)
	}
	srv, err := etcdserver.Start(ctx, etcdserver.Config{Dir: *dir, ClientAddr: *listen, PeerAddr: *peer, Name: *name, LogLevel: *etcdLog})
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer srv.Close()
	log.Info("registry: serving", "endpoint", srv.Endpoint(), "dir", *dir)
	fmt.Fprintln(stdout, srv.Endpoint())
	select {
	case <-ctx.Done():
		log.Info("registry: shutting down")
		return nil
	case err := <-srv.Err():
		return fmt.Errorf("registry: etcd failed: %w", err)
	}
}
