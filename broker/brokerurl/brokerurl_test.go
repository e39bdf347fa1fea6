package brokerurl_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/brokerurl"
	"github.com/courier-go/courier/broker/kafka"
	"github.com/courier-go/courier/broker/natsjs/embedded"
	"github.com/courier-go/courier/internal/testnet"
	"github.com/courier-go/courier/internal/testserver"
	"github.com/courier-go/courier/message"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// open opens raw and closes the broker when the test ends.
func open(t *testing.T, raw string) broker.Broker {
	t.Helper()
	b, err := brokerurl.Open(ctxFor(t), raw)
	if err != nil {
		t.Fatalf("Open(%q): %v", raw, err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// roundTrip sends a message through b and waits for it.
func roundTrip(t *testing.T, b broker.Broker) {
	t.Helper()
	ctx := ctxFor(t)
	got := make(chan string, 1)
	sub, err := b.Subscribe(ctx, "brokerurl-test", []string{"brokerurl.ch"}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		select {
		case got <- string(m.Payload):
		default:
		}
		return nil
	}))
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close(ctx)
	if err := b.Send(ctx, "brokerurl.ch", message.New([]byte("hello"))); err != nil {
		t.Fatalf("Send: %v", err)
	}
	select {
	case p := <-got:
		if p != "hello" {
			t.Fatalf("got %q", p)
		}
	case <-ctx.Done():
		t.Fatal("the message did not arrive")
	}
}

func TestBadURLs(t *testing.T) {
	for raw, want := range map[string]string{
		"":                                    "unsupported",
		"redis://localhost":                   "unsupported",
		"::nonsense":                          "invalid URL",
		"memory://?shards=0":                  "shards",
		"memory://?shards=x":                  "shards",
		"memory://?shard=2":                   `unknown parameter "shard"`,
		"memory://host":                       "no user, host",
		"nats+embedded://":                    "storage directory",
		"nats+embedded://dir/x":               "not a host",
		"nats+embedded:///tmp/x?shards=-1":    "shards",
		"nats+embedded:///tmp/x?replicas=3":   `unknown parameter "replicas"`,
		"nats://":                             "needs a host",
		"nats://127.0.0.1:4222?shards=2000":   "shards",
		"kafka://":                            "at least one broker",
		"kafka://127.0.0.1:9092?partitions=0": "partitions",
		"kafka://127.0.0.1:9092/topic":        "no path",
		"kafka://127.0.0.1:9092?tls=yes":      "tls",
		"kafka://127.0.0.1:9092?sasl=plain":   "needs a user",
		"kafka://u:p@127.0.0.1:9092?sasl=md5": "sasl",
		"kafka://127.0.0.1:9092?acks=1":       `unknown parameter "acks"`,
		"amqp://":                             "needs a host",
		"amqp://u:p@127.0.0.1:5672/?shards=x": "shards",
		"nats://127.0.0.1:4222/stream":        "no path",
		"activemq://":                         "needs a host",
		"activemq://127.0.0.1?shards=0":       "shards",
		"activemq://127.0.0.1/queue":          "no path",
		"activemq://127.0.0.1?shardz=4":       `unknown parameter "shardz" (known: shards, tls, cacertfile, certfile, keyfile, server_name_indication)`,
		"activemq://127.0.0.1?certfile=c.pem": "key file",

		// Unknown parameters are refused for every scheme, naming the
		// known ones; so are repeated ones.
		"memory://?shardz=4":                                       `unknown parameter "shardz" (known: shards)`,
		"nats+embedded:///tmp/x?shardz=4":                          `unknown parameter "shardz" (known: shards, listen, certfile, keyfile, cacertfile)`,
		"nats://127.0.0.1:4222?shardz=4":                           `unknown parameter "shardz" (known: shards, replicas, tls, cacertfile, certfile, keyfile, server_name_indication)`,
		"kafka://127.0.0.1:9092?shardz=4":                          `unknown parameter "shardz" (known: partitions, replication, sasl, format, tls, cacertfile, certfile, keyfile, server_name_indication)`,
		"kafka://127.0.0.1:9092?format=java":                       `format="java": want courier (the default) or eventuate`,
		"amqp://u:p@127.0.0.1:5672/?shardz=4":                      `unknown parameter "shardz" (known: shards, connection_timeout, format, partitions, heartbeat, channel_max, auth_mechanism)`,
		"amqp://u:p@127.0.0.1:5672/?partitions=4":                  "partitions is for format=eventuate",
		"amqp://u:p@127.0.0.1:5672/?format=eventuate&partitions=0": "partitions",
		"amqps://u:p@127.0.0.1:5671/?shardz=4":                     `unknown parameter "shardz" (known: shards, connection_timeout, format, partitions, heartbeat, channel_max, auth_mechanism, certfile, keyfile, cacertfile, server_name_indication)`,
		"memory://?shards=2&shards=4":                              `parameter "shards" given 2 times`,
		"kafka://127.0.0.1:9092?tls=true&tls=false":                `parameter "tls" given 2 times`,
		"amqp://u:p@127.0.0.1:5672/?certfile=c.pem":                "write amqps://",
		"amqp://u:p@127.0.0.1:5672/?heartbeat=often":               "heartbeat",
		"amqp://u:p@127.0.0.1:5672/?channel_max=70000":             "channel_max",
		"amqp://u:p@127.0.0.1:5672/?connection_timeout=0":          "connection_timeout",
		"amqps://u:p@127.0.0.1:5671/?connection_timeout=x":         "connection_timeout",

		// TLS files are read at once, and refused where they cannot be
		// used.
		"nats://127.0.0.1:4222?cacertfile=/nonexistent":          "CA file",
		"nats://127.0.0.1:4222?certfile=c.pem":                   "key file",
		"kafka://127.0.0.1:9092?tls=false&cacertfile=ca.pem":     "tls=false",
		"kafka://127.0.0.1:9092?certfile=/nonexistent&keyfile=k": "client certificate",
		"nats+embedded:///tmp/x?certfile=c.pem&keyfile=k.pem":    "add listen=PORT",
		"memory://?cacertfile=ca.pem":                            `unknown parameter "cacertfile"`,
		"amqp://u:p@127.0.0.1:5672/?cacertfile=ca.pem":           "write amqps://",
	} {
		_, err := brokerurl.Open(context.Background(), raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open(%q) = %v, want an error saying %q", raw, err, want)
		}
	}
	if _, err := brokerurl.Open(context.Background(), "redis://x"); !errors.Is(err, brokerurl.ErrUnsupported) {
		t.Errorf("unknown scheme: %v, want ErrUnsupported", err)
	}
}

// TestAMQPConnectionTimeout checks that connection_timeout bounds Open
// when the server accepts the connection and never answers, and that the
// error shows neither the password nor anything mangled by hiding it.
func TestAMQPConnectionTimeout(t *testing.T) {
	addr := testnet.SilentPort(t)
	ctx := ctxFor(t) // the test's own deadline, should the parameter not work
	start := time.Now()
	_, err := brokerurl.Open(ctx, "amqp://courier:p@"+addr+"/?connection_timeout=300&heartbeat=5")
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Open took %v with connection_timeout=300", took)
	}
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "amqp://courier:xxxxx@"+addr) ||
		strings.Contains(err.Error(), "amqxxxxx") {
		t.Fatalf("Open = %v, want a deadline error naming amqp://courier:xxxxx@%s", err, addr)
	}
}

func TestMemory(t *testing.T) {
	roundTrip(t, open(t, "memory://"))
	roundTrip(t, open(t, "memory://?shards=4"))
}

func TestEmbeddedNATS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nats")
	b := open(t, "nats+embedded://"+dir+"?shards=4")
	roundTrip(t, b)
	if err := b.Close(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("no storage in %s: %v", dir, err)
	}
	// Close shut the server down: another can start on the directory, and
	// the subscriber id resumes there.
	roundTrip(t, open(t, "nats+embedded://"+dir))

	// A relative directory.
	t.Chdir(t.TempDir())
	roundTrip(t, open(t, "nats+embedded:data/nats?listen=0"))
	if _, err := os.Stat("data/nats"); err != nil {
		t.Fatalf("no storage in the relative directory: %v", err)
	}
}

func TestNATS(t *testing.T) {
	ctx := ctxFor(t)
	srv, err := embedded.Start(ctx, t.TempDir(), embedded.WithListenPort(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	roundTrip(t, open(t, srv.ClientURL()+"?shards=2"))
	if _, err := brokerurl.Open(ctx, "nats://127.0.0.1:1"); err == nil {
		t.Error("Open of a NATS address where nothing listens succeeded")
	}
}

func TestKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b := open(t, "kafka://"+strings.Join(c.ListenAddrs(), ",")+"?partitions=3&replication=1")
	roundTrip(t, b)
	topics, err := kadm.NewClient(b.(*kafka.Broker).Client()).ListTopics(ctxFor(t), "brokerurl.ch")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topics["brokerurl.ch"].Partitions); n != 3 {
		t.Errorf("topic has %d partitions, want the URL's 3", n)
	}

	// format=eventuate: the record is Eventuate's envelope, keyed by the
	// message ID when it has no PARTITION_ID.
	ev := open(t, "kafka://"+strings.Join(c.ListenAddrs(), ",")+"?partitions=1&format=eventuate")
	m := message.New([]byte(`{"a":1}`))
	if err := ev.Send(ctxFor(t), "brokerurl.eventuate", m); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("brokerurl.eventuate"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	fs := cl.PollFetches(ctxFor(t))
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	rec := fs.Records()[0]
	if string(rec.Key) != m.ID || len(rec.Headers) != 0 || !strings.HasPrefix(string(rec.Value), `{"payload":"{\"a\":1}","headers":{`) {
		t.Errorf("format=eventuate wrote key %q, headers %v, value %s", rec.Key, rec.Headers, rec.Value)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := brokerurl.Open(ctx, "kafka://127.0.0.1:1"); err == nil {
		t.Error("Open of a Kafka address where nothing listens succeeded")
	}
}

func TestKafkaSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-256", "courier", "s3cret"), kfake.Superuser("PLAIN", "plainuser", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	roundTrip(t, open(t, "kafka://courier:s3cret@"+addr+"?sasl=scram-sha-256"))
	roundTrip(t, open(t, "kafka://plainuser:pw@"+addr+"?sasl=plain"))
	_, err = brokerurl.Open(ctxFor(t), "kafka://courier:wr0ng-pw@"+addr+"?sasl=scram-sha-256")
	if err == nil {
		t.Fatal("Open with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wr0ng-pw") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestAMQP uses the RabbitMQ server at COURIER_AMQP_URL, by default the one
// scripts/services/rabbitmq.sh starts. Outside CI, a missing server skips
// the test.
func TestAMQP(t *testing.T) {
	raw := os.Getenv("COURIER_AMQP_URL")
	if raw == "" {
		raw = "amqp://guest:guest@127.0.0.1:5672/"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	probe, err := brokerurl.Open(ctx, raw)
	if err != nil {
		msg := fmt.Sprintf("RabbitMQ unavailable (%v); start it with scripts/services/rabbitmq.sh (or set COURIER_AMQP_URL)", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if err := probe.Close(ctx); err != nil {
		t.Fatal(err)
	}
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	roundTrip(t, open(t, raw+sep+"shards=4"))
	// format=eventuate: Eventuate's topology, with the URL's partitions
	// (amqp.WithEventuateFormat, tested in broker/amqp).
	ev := open(t, raw+sep+"format=eventuate&partitions=3")
	got := make(chan string, 1)
	sub, err := ev.Subscribe(ctx, "brokerurl-ev", []string{"brokerurl.eventuate"}, broker.HandlerFunc(func(_ context.Context, m *message.Message) error {
		got <- string(m.Payload)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sub.Close(ctx)
		if err := ev.(broker.SubscriberRemover).RemoveSubscriber(ctx, "brokerurl-ev", []string{"brokerurl.eventuate"}); err != nil {
			t.Error(err)
		}
		if err := ev.(broker.ChannelRemover).RemoveChannel(ctx, "brokerurl.eventuate"); err != nil {
			t.Error(err)
		}
	}()
	conn, err := amqp091.Dial(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	// The third partition queue exists: the URL's partitions=3.
	if _, err := ch.QueueDeclarePassive("brokerurl.eventuate-brokerurl-ev-2", true, false, false, false, nil); err != nil {
		t.Errorf("partition queue 2: %v", err)
	}
	if err := ev.Send(ctx, "brokerurl.eventuate", message.New([]byte(`"hello"`))); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != `"hello"` {
			t.Errorf("got %q", p)
		}
	case <-ctx.Done():
		t.Fatal("the message did not arrive")
	}
	if _, err := brokerurl.Open(ctx, strings.Replace(raw, "amqp://", "amqps://", 1)); err == nil {
		t.Error("amqps:// to a server without TLS succeeded")
	}
}

// TestActiveMQ uses the ActiveMQ server at COURIER_ACTIVEMQ_URL, by
// default the one scripts/services/activemq.sh starts. Outside CI, a
// missing server skips the test.
func TestActiveMQ(t *testing.T) {
	raw := testserver.ActiveMQURL(t)
	roundTrip(t, open(t, raw+"?shards=4"))
}

// TestSecretsNeverShow opens URLs that fail, each holding a secret in
// another form (percent-encoded otherwise than net/url would, a NATS
// token, unencoded reserved characters, a malformed URL, a list of
// servers), and checks that no error shows the secret, however encoded.
func TestSecretsNeverShow(t *testing.T) {
	closed := testnet.ClosedPort(t)
	for _, tc := range []struct{ raw, secret string }{
		{"nats://courier:s3cr%65t@" + closed, "s3cret"},
		{"nats://courier:p%40ssw0rd@" + closed, "p@ssw0rd"},
		{"nats://t0ken-s3cret@" + closed, "t0ken-s3cret"},
		{"nats://a:s3cret@" + closed + ",nats://b:0ther-s3cret@" + closed, "0ther-s3cret"},
		{"nats://courier:s3cret@" + closed + "?shardz=2", "s3cret"},
		{"nats://courier:s3cret@h:bad:port", "s3cret"},
		{"nats://courier:s3/cr?et@" + closed, "s3/cr?et"},
		{"kafka://courier:s3cr%65t@" + closed + "?sasl=bogus", "s3cret"},
		{"kafka://courier:s3cret@[::1", "s3cret"},
		{"amqp://courier:s3cr%65t@" + closed + "/", "s3cret"},
		{"amqps://courier:s3cret@" + closed + "/?cacertfile=/nonexistent", "s3cret"},
		{"amqp://courier:s3#cret@" + closed + "/", "s3#cret"},
		{"activemq://courier:s3cr%65t@" + closed, "s3cret"},
		{"activemq://courier:s3cret@" + closed + "?cacertfile=/nonexistent", "s3cret"},
		{"memory://courier:s3cret@", "s3cret"},
		{"redis://courier:s3cret@h", "s3cret"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		b, err := brokerurl.Open(ctx, tc.raw)
		cancel()
		if err == nil {
			b.Close(context.Background())
			t.Errorf("Open(%q) succeeded", tc.raw)
			continue
		}
		for _, form := range []string{tc.secret, url.QueryEscape(tc.secret), url.PathEscape(tc.secret)} {
			if strings.Contains(err.Error(), form) {
				t.Errorf("Open(%q) = %v: shows %q", tc.raw, err, form)
			}
		}
	}
}
