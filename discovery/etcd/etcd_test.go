package etcd_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/etcd"
	"github.com/courier-go/courier/discovery/etcd/etcdserver"
	"github.com/courier-go/courier/discovery/registrytest"
)

// server is the embedded etcd the package's tests share.
var server *etcdserver.Server

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	if os.Getenv(serverEnv) != "" {
		os.Exit(runServer())
	}
	dir, err := os.MkdirTemp("", "courier-etcd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	server, err = etcdserver.Start(ctx, etcdserver.Config{Dir: dir, LogLevel: "fatal"})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	server.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

func client(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{server.Endpoint()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func newRegistry(t testing.TB, opts ...etcd.Option) *etcd.Registry {
	t.Helper()
	r, err := etcd.New(client(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestConformance(t *testing.T) {
	registrytest.Run(t, registrytest.Config{New: func(t *testing.T) discovery.Registry { return newRegistry(t) }})
}

func TestOptionsValidated(t *testing.T) {
	cli := client(t)
	for _, p := range []string{"", "x", "/x", "x/"} {
		if _, err := etcd.New(cli, etcd.WithPrefix(p)); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	if _, err := etcd.New(nil); err == nil {
		t.Error("nil client accepted")
	}
}
