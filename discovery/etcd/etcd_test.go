package etcd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/etcd"
	"github.com/courier-go/courier/discovery/etcd/etcdserver"
	"github.com/courier-go/courier/discovery/registrytest"
	"github.com/courier-go/courier/internal/testnet"
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

// TestUnreachableEtcd checks that every request to an etcd that cannot be
// reached, at a closed port or at one that never answers, fails within the
// timeout with an error naming the endpoint.
func TestUnreachableEtcd(t *testing.T) {
	const timeout = 300 * time.Millisecond
	inst := discovery.Instance{Service: "kitchen", ID: "k1", Address: "127.0.0.1:1"}
	requests := []struct {
		name string
		do   func(ctx context.Context, r *etcd.Registry) error
	}{
		{"Ping", func(ctx context.Context, r *etcd.Registry) error { return r.Ping(ctx) }},
		{"Register", func(ctx context.Context, r *etcd.Registry) error {
			_, err := r.Register(ctx, inst)
			return err
		}},
		{"Instances", func(ctx context.Context, r *etcd.Registry) error {
			_, err := r.Instances(ctx, "kitchen")
			return err
		}},
		{"Watch", func(ctx context.Context, r *etcd.Registry) error {
			_, err := r.Watch(ctx, "kitchen")
			return err
		}},
	}
	for _, p := range testnet.Unreachable {
		addr := p.Addr(t)
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + addr}, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		r, err := etcd.New(cli, etcd.WithTimeout(timeout), etcd.WithLogger(quietLog))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		for _, req := range requests {
			t.Run(p.Name+"/"+req.name, func(t *testing.T) {
				// The test's own deadline, should the timeout not work.
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				start := time.Now()
				err := req.do(ctx, r)
				took := time.Since(start)
				if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), addr) {
					t.Fatalf("%s = %v, want a deadline error naming %s", req.name, err, addr)
				}
				if took > timeout+2*time.Second {
					t.Errorf("%s took %v with a timeout of %v", req.name, took, timeout)
				}
			})
		}
	}
}

func TestTimeoutValidated(t *testing.T) {
	if _, err := etcd.New(client(t), etcd.WithTimeout(0)); err == nil {
		t.Error("timeout 0 accepted")
	}
}
