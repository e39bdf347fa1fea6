package embedded_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"os"

	"github.com/courier-go/courier/broker/natsjs/embedded"
)

// A service starts the server on a directory of its own, opens a Broker on
// it, and, to let other processes in, listens on a port.
func ExampleStart() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "courier-embedded-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	srv, err := embedded.Start(ctx, dir, embedded.WithListenPort(0))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	b, err := srv.Broker(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close(ctx)
	fmt.Println(srv.Dir() == dir, srv.ClientURL() != "", b.Ping(ctx))
	// Output: true true <nil>
}

// A server that other processes reach over TLS only, and only with a
// client certificate its CA signed (nats-server's verify); clients open
// it with nats://host:port?cacertfile=ca.pem&certfile=client.pem&keyfile=client-key.pem
// (package brokerurl), or natsjs.Open with nats.Secure.
func ExampleWithTLS() {
	ctx := context.Background()
	cert, err := tls.LoadX509KeyPair("/etc/courier/nats.pem", "/etc/courier/nats-key.pem")
	if err != nil {
		log.Fatal(err)
	}
	caPEM, err := os.ReadFile("/etc/courier/ca.pem")
	if err != nil {
		log.Fatal(err)
	}
	clients := x509.NewCertPool()
	clients.AppendCertsFromPEM(caPEM)
	srv, err := embedded.Start(ctx, "/var/lib/courier/nats", embedded.WithListenPort(4222), embedded.WithTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    clients,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	fmt.Println(srv.ClientURL())
}
