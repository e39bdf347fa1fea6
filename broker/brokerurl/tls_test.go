package brokerurl_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokerurl"
	"github.com/courier-go/courier/internal/testcert"
	"github.com/courier-go/courier/internal/testnet"
	"github.com/courier-go/courier/internal/testserver"
)

// tlsQuery is the query of the TLS parameters: the CA's file, and a
// client certificate if client is not empty.
func tlsQuery(ca *testcert.CA, client *testcert.Pair) string {
	q := url.Values{"cacertfile": {ca.CertFile}}
	if client != nil {
		q.Set("certfile", client.CertFile)
		q.Set("keyfile", client.KeyFile)
	}
	return q.Encode()
}

// refused checks that Open of raw fails, within seconds.
func refused(t *testing.T, raw, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := brokerurl.Open(ctx, raw)
	if err == nil {
		b.Close(context.Background())
		t.Fatalf("Open succeeded %s", why)
	}
	t.Logf("%s: %v", why, err)
}

// TestNATSOverTLS starts an embedded NATS server whose listener speaks
// TLS only and requires client certificates its CA signed (nats-server's
// verify), from a nats+embedded:// URL, and reaches it through nats://
// with the CA and a client certificate: messages go round. Without a
// client certificate, with another CA's, without the CA, and without
// TLS, the server is not reached.
func TestNATSOverTLS(t *testing.T) {
	ca := testcert.NewCA(t)
	server := ca.Server(t, "nats")
	client := ca.Client(t, "client", "courier")
	hostPort := testnet.ClosedPort(t)
	_, port, _ := strings.Cut(hostPort, ":")
	open(t, "nats+embedded://"+t.TempDir()+"?listen="+port+"&certfile="+server.CertFile+"&keyfile="+server.KeyFile+
		"&cacertfile="+ca.CertFile)
	addr := "nats://" + hostPort
	roundTrip(t, open(t, addr+"?"+tlsQuery(ca, &client)))

	stranger := testcert.NewCA(t).Client(t, "stranger", "courier")
	refused(t, addr+"?"+tlsQuery(ca, nil), "without a client certificate")
	refused(t, addr+"?"+tlsQuery(ca, &stranger), "with a client certificate of another CA")
	refused(t, addr+"?certfile="+client.CertFile+"&keyfile="+client.KeyFile, "without the CA")
	refused(t, addr, "without TLS")
}

// TestKafkaOverTLS runs a Kafka cluster (kfake) whose listeners speak TLS
// and require client certificates its CA signed, and reaches it through
// kafka:// with the CA and a client certificate, with SASL too: messages
// go round. Without a client certificate, without the CA, and without
// TLS, the cluster is not reached.
func TestKafkaOverTLS(t *testing.T) {
	ca := testcert.NewCA(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(ca.ServerConfig(t)), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "courier", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := "kafka://courier:s3cret@" + c.ListenAddrs()[0]
	client := ca.Client(t, "client", "courier")
	roundTrip(t, open(t, addr+"?"+tlsQuery(ca, &client)))

	refused(t, addr+"?"+tlsQuery(ca, nil), "without a client certificate")
	refused(t, addr+"?certfile="+client.CertFile+"&keyfile="+client.KeyFile, "without the CA")
	refused(t, addr, "without TLS")
}

// TestAMQPOverTLS installs certificates the test makes on the local
// RabbitMQ, which scripts/services/rabbitmq.sh configures to serve AMQP
// over TLS on port 5671 to clients with a certificate its CA signed, and
// reaches it through amqps:// with the CA and a client certificate:
// messages go round. Without a client certificate, with another CA's,
// and without the CA, RabbitMQ is not reached.
func TestAMQPOverTLS(t *testing.T) {
	testserver.AMQPURL(t)
	ca := testserver.InstallTLS(t, testserver.RabbitMQTLS)
	client := ca.Client(t, "client", "guest")
	addr := "amqps://guest:guest@127.0.0.1:5671/"
	b := open(t, addr+"?"+tlsQuery(ca, &client))
	roundTrip(t, b)
	// What roundTrip made stays on RabbitMQ unless removed.
	if rm, ok := b.(broker.SubscriberRemover); ok {
		rm.RemoveSubscriber(ctxFor(t), "brokerurl-test", []string{"brokerurl.ch"})
	}
	if rm, ok := b.(broker.ChannelRemover); ok {
		rm.RemoveChannel(ctxFor(t), "brokerurl.ch")
	}

	stranger := testcert.NewCA(t).Client(t, "stranger", "guest")
	refused(t, addr+"?"+tlsQuery(ca, nil), "without a client certificate")
	refused(t, addr+"?"+tlsQuery(ca, &stranger), "with a client certificate of another CA")
	refused(t, addr+"?certfile="+url.QueryEscape(client.CertFile)+"&keyfile="+url.QueryEscape(client.KeyFile), "without the CA")
}
