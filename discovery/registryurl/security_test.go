package registryurl_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/etcd/etcdserver"
	"github.com/courier-go/courier/discovery/registryurl"
	"github.com/courier-go/courier/internal/testcert"
)

// TestEtcdOverTLSWithAuthentication runs the embedded etcd with TLS,
// client certificates required and authentication on, and checks who may
// do what through etcd:// URLs: a writer (by password) registers, a
// reader (by the common name of its certificate) reads but cannot
// register, and a client that is no user, a wrong password, a client
// without a certificate or without TLS get nothing.
func TestEtcdOverTLSWithAuthentication(t *testing.T) {
	ca := testcert.NewCA(t)
	server := ca.Server(t, "etcd")
	srv, err := etcdserver.Start(ctxFor(t), etcdserver.Config{Dir: t.TempDir(), LogLevel: "fatal",
		CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.CertFile,
		Users: []etcdserver.User{{Name: "root", Password: "r00t-pw"}, {Name: "orders", Password: "wr1ter-pw"},
			{Name: "router", Password: "r3ader-pw", ReadOnly: true}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if !strings.HasPrefix(srv.Endpoint(), "https://") {
		t.Fatalf("endpoint %s is not https", srv.Endpoint())
	}
	host := strings.TrimPrefix(srv.Endpoint(), "https://")
	files := func(cn string) string {
		p := ca.Client(t, "client-"+cn, cn)
		return url.Values{"cacertfile": {ca.CertFile}, "certfile": {p.CertFile}, "keyfile": {p.KeyFile}}.Encode()
	}

	roundTrip(t, open(t, "etcd://orders:wr1ter-pw@"+host+"?"+files("orders")))

	reader := open(t, "etcd://"+host+"?"+files("router"))
	if _, err := reader.Instances(ctxFor(t), "kitchen"); err != nil && !errors.Is(err, discovery.ErrUnknownService) {
		t.Fatalf("the reader cannot read: %v", err)
	}
	if _, err := reader.Register(ctxFor(t), discovery.Instance{Service: "orders", ID: "rogue", Address: "10.6.6.6:80"}); err == nil {
		t.Fatal("a read-only user registered an instance")
	}
	for why, raw := range map[string]string{
		"a certificate of no user": "etcd://" + host + "?" + files("nobody"),
		"a wrong password":         "etcd://orders:wr0ng-pw@" + host + "?" + files("orders"),
		"no client certificate":    "etcd://orders:wr1ter-pw@" + host + "?cacertfile=" + url.QueryEscape(ca.CertFile),
		"no TLS":                   "etcd://orders:wr1ter-pw@" + host,
		"another CA's authority":   "etcd://orders:wr1ter-pw@" + host + "?" + strings.Replace(files("orders"), url.QueryEscape(ca.CertFile), url.QueryEscape(testcert.NewCA(t).CertFile), 1),
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := registryurl.Open(ctx, raw, registryurl.WithTimeout(time.Second))
		if err == nil {
			_, err = r.Register(ctx, discovery.Instance{Service: "orders", ID: "rogue", Address: "10.6.6.6:80"})
			r.Close()
		}
		cancel()
		if err == nil {
			t.Errorf("registered with %s", why)
		} else if strings.Contains(err.Error(), "wr0ng-pw") || strings.Contains(err.Error(), "wr1ter-pw") {
			t.Errorf("with %s, the error shows the password: %v", why, err)
		}
	}

	// The users stay on a restart; a changed password is refused.
	cfg := srv.Config()
	srv.Close()
	cfg.Users[1].Password = "changed"
	if s, err := etcdserver.Start(ctxFor(t), cfg); err == nil {
		s.Close()
		t.Fatal("a restart with another password for a user succeeded")
	}
	cfg.Users[1].Password = "wr1ter-pw"
	again, err := etcdserver.Start(ctxFor(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { again.Close() })
	roundTrip(t, open(t, "etcd://orders:wr1ter-pw@"+host+"?"+files("orders")))
}
