package etcdserver_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/courier-go/courier/discovery"
	"github.com/courier-go/courier/discovery/etcd/etcdserver"
	"github.com/courier-go/courier/discovery/registryurl"
)

// A registry that only its users may use: orders registers its instances,
// anyone else is refused. With CertFile, KeyFile and ClientCAFile it also
// serves TLS only, to clients with a certificate.
func ExampleStart_users() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "courier-registry-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := etcdserver.Start(ctx, etcdserver.Config{Dir: dir, LogLevel: "fatal", Users: []etcdserver.User{
		{Name: "root", Password: "change-me"},
		{Name: "orders", Password: "orders-secret"},
		{Name: "router", Password: "router-secret", ReadOnly: true},
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	host := strings.TrimPrefix(srv.Endpoint(), "http://")
	inst := discovery.Instance{Service: "orders", ID: "o1", Address: "127.0.0.1:8080"}
	for _, user := range []string{"orders:orders-secret@", "router:router-secret@", ""} {
		reg, err := registryurl.Open(ctx, "etcd://"+user+host)
		if err != nil {
			log.Fatal(err)
		}
		_, err = reg.Register(ctx, inst)
		fmt.Printf("%q may register: %v\n", strings.Split(user, ":")[0], err == nil)
		reg.Close()
	}
	// Output:
	// "orders" may register: true
	// "router" may register: false
	// "" may register: false
}
