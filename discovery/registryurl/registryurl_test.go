package registryurl_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/etcd/etcdserver"
	"github.com/courier-go/courier/discovery/registryurl"
	"github.com/courier-go/courier/internal/testnet"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestBadURLs(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"", "unsupported"},
		{"zk://127.0.0.1:2181", "unsupported"},
		{"::nonsense", "invalid URL"},
		{"etcd://", "no etcd endpoint"},
		{"etcd://,127.0.0.1:2379", "empty etcd endpoint"},
		{"etcd://127.0.0.1:2379/courier", "no path"},
		{"etcd://127.0.0.1:2379?shardz=4", `unknown parameter "shardz" (known: prefix, tls, cacertfile, certfile, keyfile, server_name_indication)`},
		{"etcd://127.0.0.1:2379?prefix=/a/&prefix=/b/", `parameter "prefix" given 2 times`},
		{"etcd://127.0.0.1:2379?prefix=nope", "prefix"},
		{"etcd://courier@127.0.0.1:2379", "needs a user name and a password"},
		{"etcd://127.0.0.1:2379?tls=false&cacertfile=ca.pem", "tls=false"},
		{"etcd://127.0.0.1:2379?cacertfile=/nonexistent", "CA file"},
		{"dns://?shardz=4", `unknown parameter "shardz" (known: domain, interval)`},
		{"dns://?cacertfile=ca.pem", `unknown parameter "cacertfile"`},
		{"dns://?interval=soon", "interval"},
		{"dns://?interval=-1s", "interval"},
		{"dns://?domain=a%20b", "domain"},
		{"dns://u:p@127.0.0.1:53", "takes a DNS server"},
		{"dns://nohost", "DNS server"},
		{"memory://?shardz=4", `unknown parameter "shardz" (memory:// takes none)`},
		{"memory://?tls=true", `unknown parameter "tls" (memory:// takes none)`},
		{"memory://host", "no host"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			r, err := registryurl.Open(context.Background(), tc.raw)
			if err == nil {
				r.Close()
				t.Fatalf("Open(%q) accepted", tc.raw)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open(%q) = %v, want an error saying %q", tc.raw, err, tc.want)
			}
		})
	}
	if _, err := registryurl.Open(context.Background(), "zk://x"); !errors.Is(err, registryurl.ErrUnsupported) {
		t.Errorf("unknown scheme: %v, want ErrUnsupported", err)
	}
	if _, err := registryurl.Open(context.Background(), "memory://", registryurl.WithTimeout(0)); err == nil {
		t.Error("timeout 0 accepted")
	}
}

// TestPasswordNeverShows opens registry URLs that fail, etcd and DNS,
// with the password written in every form (percent-encoded otherwise than
// net/url would, with reserved characters left unencoded, a user name
// alone, in a malformed URL), and checks that no error shows it.
func TestPasswordNeverShows(t *testing.T) {
	for _, raw := range []string{
		"etcd://courier:s3cret@127.0.0.1:2379?shardz=1", "etcd://courier:s3cret@127.0.0.1:2379/x", "zk://courier:s3cret@h",
		"etcd://courier:s3cret@h:bad:port", "etcd://courier:s3cr%65t@127.0.0.1:2379?shardz=1", "etcd://courier:s3cr%65t@[::1",
		"etcd://courier:s3/cret@127.0.0.1:2379", "etcd://s3cret@127.0.0.1:2379", "etcd://courier:s3cret@127.0.0.1:2379?cacertfile=/nonexistent&tls=true",
		"dns://courier:s3cret@127.0.0.1:53", "dns://courier:s3cr%65t@h:bad:port", "dns://s3cret@127.0.0.1:53?domain=x",
		"memory://courier:s3cret@", "zk://courier:s3cr%65t@h",
	} {
		r, err := registryurl.Open(context.Background(), raw)
		if err == nil {
			r.Close()
			t.Errorf("Open(%q) succeeded", raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "s3/cret") {
			t.Errorf("Open(%q) = %v", raw, err)
		}
	}
}

// roundTrip registers an instance through r and reads it back, and
// finds its service in r's list.
func roundTrip(t *testing.T, r registryurl.Registry) {
	t.Helper()
	ctx := ctxFor(t)
	lease, err := r.Register(ctx, discovery.Instance{Service: "kitchen", ID: "k1", Address: "127.0.0.1:8080"})
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	defer lease.Deregister(ctx)
	insts, err := r.Instances(ctx, "kitchen")
	if err != nil || len(insts) != 1 || insts[0].ID != "k1" {
		t.Fatalf("Instances = %v, %v", insts, err)
	}
	if names, err := r.Services(ctx); err != nil || !slices.Contains(names, "kitchen") {
		t.Fatalf("Services = %v, %v; want kitchen among them", names, err)
	}
}

// TestDNSListsNoServices checks that a dns:// registry says it cannot
// list its services rather than list none.
func TestDNSListsNoServices(t *testing.T) {
	r, err := registryurl.Open(ctxFor(t), "dns://127.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	names, err := r.Services(ctxFor(t))
	if !errors.Is(err, errors.ErrUnsupported) || names != nil {
		t.Fatalf("Services = %v, %v; want errors.ErrUnsupported", names, err)
	}
}

// open opens raw, checks that it answers and closes it when the test ends.
func open(t *testing.T, raw string) registryurl.Registry {
	t.Helper()
	r, err := registryurl.Open(ctxFor(t), raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Ping(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestMemory(t *testing.T) {
	roundTrip(t, open(t, "memory://"))
}

func TestEtcd(t *testing.T) {
	srv, err := etcdserver.Start(ctxFor(t), etcdserver.Config{Dir: t.TempDir(), LogLevel: "fatal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	roundTrip(t, open(t, "etcd://"+strings.TrimPrefix(srv.Endpoint(), "http://")+"?prefix=/test/services/"))
}

// TestUnreachableEtcd checks that Ping reports an etcd at a closed port,
// and at a port that never answers, within the timeout, naming the URL
// without its password.
func TestUnreachableEtcd(t *testing.T) {
	const timeout = 300 * time.Millisecond
	for _, p := range testnet.Unreachable {
		t.Run(p.Name, func(t *testing.T) {
			addr := p.Addr(t)
			r, err := registryurl.Open(ctxFor(t), "etcd://"+addr, registryurl.WithTimeout(timeout))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got, want := r.String(), "etcd://"+addr; got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
			start := time.Now()
			err = r.Ping(ctxFor(t))
			if took := time.Since(start); took > timeout+2*time.Second {
				t.Errorf("Ping took %v with a timeout of %v", took, timeout)
			}
			if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "registry etcd://"+addr) {
				t.Fatalf("Ping = %v, want a deadline error naming etcd://%s", err, addr)
			}
			// With a password, the client authenticates in Open.
			start = time.Now()
			_, err = registryurl.Open(ctxFor(t), "etcd://courier:s3cret@"+addr, registryurl.WithTimeout(timeout))
			if took := time.Since(start); took > timeout+2*time.Second {
				t.Errorf("Open took %v with a timeout of %v", took, timeout)
			}
			if err == nil || !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("Open with a password = %v, want an error naming %s without the password", err, addr)
			}
		})
	}
}
