// Package brokerurl opens a broker from a URL, for commands and
// configuration that pick the broker by name:
//
//	memory://[?shards=N]
//	    the in-process broker (package memory)
//	nats+embedded:///abs/dir[?shards=N&listen=PORT[&certfile=F&keyfile=K[&cacertfile=C]]]
//	nats+embedded:rel/dir[?shards=N&listen=PORT...]
//	    the default durable broker: a NATS JetStream server started inside
//	    the process with its storage in the directory, shut down when the
//	    broker is closed (package natsjs/embedded); listen=PORT also serves
//	    other processes on 127.0.0.1:PORT (0 picks a free port), over TLS
//	    with the server certificate in F and its key in K, and only to
//	    clients with a certificate signed by a CA in C when it is given
//	nats://[user:pass@|token@]host:port[,host:port...][?shards=N&replicas=N&TLS]
//	    an existing NATS server or cluster with JetStream (package natsjs)
//	kafka://[user:pass@]host:port[,host:port...][?partitions=N&replication=N&sasl=MECH&format=eventuate&TLS]
//	    a Kafka cluster, given the addresses of some of its brokers (package
//	    kafka); with a user, SASL with MECH = scram-sha-512 (the default),
//	    scram-sha-256 or plain; format=eventuate reads and writes Eventuate
//	    Tram's records (kafka.WithEventuateFormat)
//	amqp://user:pass@host:port/vhost[?shards=N&connection_timeout=MS&format=eventuate&partitions=N&heartbeat=S&channel_max=N&auth_mechanism=M]
//	amqps://...[?...&certfile=F&keyfile=F&cacertfile=F&server_name_indication=H]
//	    a RabbitMQ server (package amqp); connection_timeout, in
//	    milliseconds, bounds Open as ctx does; format=eventuate speaks
//	    Eventuate Tram's format and topology (amqp.WithEventuateFormat),
//	    with partitions=N queues per subscriber id and channel
//	    (amqp.WithEventuatePartitions); the other parameters are
//	    RabbitMQ's URI query parameters, which the AMQP client applies
//	activemq://[user:pass@]host[:port][?shards=N&TLS]
//	    an Apache ActiveMQ 5 server, over STOMP (port 61613 by default;
//	    package activemq); shards is the number of message groups a
//	    channel's keys are spread over
//
// TLS stands for the TLS parameters nats://, kafka:// and activemq:// take:
//
//	tls=true                  TLS, verifying the server with the system's roots
//	cacertfile=F              verify the server with the CA certificates in F (PEM)
//	certfile=F&keyfile=K      present the client certificate in F, its key in K (PEM)
//	server_name_indication=H  verify the server's certificate for H, not the host
//
// Any of the files turns TLS on. amqps:// takes the same files (RabbitMQ's
// own names); amqp:// and memory:// refuse them.
//
// Reserved characters in user names and passwords must be percent-encoded.
// Unknown and repeated parameters are refused with an error naming the
// parameter and the known ones, so that a typo does not go unnoticed.
//
// Importing this package links every adapter it knows; programs that use
// one broker can call that adapter's constructor directly.
package brokerurl

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/activemq"
	"github.com/courier-go/courier/broker/amqp"
	"github.com/courier-go/courier/broker/kafka"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/broker/natsjs"
	"github.com/courier-go/courier/broker/natsjs/embedded"
	"github.com/courier-go/courier/internal/connurl"
	"github.com/courier-go/courier/internal/tlsconfig"
)

// ErrUnsupported means the URL's scheme names no known broker.
var ErrUnsupported = errors.New("brokerurl: unsupported broker URL")

// Schemes lists the URL schemes Open understands.
const Schemes = "memory://, nats+embedded:///dir, nats://, kafka://, amqp://, amqps://, activemq://"

// Open opens the broker raw names. Connection failures are reported within
// ctx's deadline. Error messages never show the URL's password.
func Open(ctx context.Context, raw string) (broker.Broker, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("brokerurl: invalid URL: %w", connurl.Redact(err, raw))
	}
	var b broker.Broker
	switch u.Scheme {
	case "memory":
		b, err = openMemory(u)
	case "nats+embedded":
		b, err = openEmbedded(ctx, u)
	case "nats":
		b, err = openNATS(ctx, u)
	case "kafka":
		b, err = openKafka(ctx, u)
	case "amqp", "amqps":
		b, err = openAMQP(ctx, u)
	case "activemq":
		b, err = openActiveMQ(ctx, u)
	default:
		return nil, fmt.Errorf("%w: %q (known: %s)", ErrUnsupported, u.Scheme, Schemes)
	}
	if err != nil {
		return nil, connurl.Redact(fmt.Errorf("brokerurl: %s: %w", connurl.Redacted(raw), err), raw)
	}
	return b, nil
}

// params reads a URL's query parameters, refusing those not in known and
// those given twice.
type params struct {
	q   url.Values
	err error
}

func newParams(u *url.URL, known ...string) *params {
	q, err := connurl.Query(u, known...)
	return &params{q: q, err: err}
}

// int returns the parameter name as an int in [lo, hi], or def if absent.
func (p *params) int(name string, def, lo, hi int) int {
	s := p.q.Get(name)
	if s == "" || p.err != nil {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		p.err = fmt.Errorf("parameter %s=%q: want a whole number from %d to %d", name, s, lo, hi)
		return def
	}
	return n
}

// eventuateFormat reads the format parameter: absent, "courier" (Courier's
// own format) or "eventuate" (Eventuate Tram's).
func (p *params) eventuateFormat() (bool, error) {
	if p.err != nil {
		return false, p.err
	}
	switch f := p.q.Get("format"); f {
	case "", "courier":
		return false, nil
	case "eventuate":
		return true, nil
	default:
		return false, fmt.Errorf("parameter format=%q: want courier (the default) or eventuate", f)
	}
}

// has reports whether the parameter name is present.
func (p *params) has(name string) bool { return p.q.Has(name) }

func openMemory(u *url.URL) (broker.Broker, error) {
	if u.Host != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.Opaque != "" {
		return nil, errors.New("memory:// takes no user, host or path")
	}
	p := newParams(u, "shards")
	var opts []memory.Option
	if p.has("shards") {
		opts = append(opts, memory.WithShards(p.int("shards", 0, 1, 1<<16)))
	}
	if p.err != nil {
		return nil, p.err
	}
	return memory.New(opts...)
}

// embeddedBroker is a natsjs Broker on a server of its own, which Close
// shuts down after the Broker.
type embeddedBroker struct {
	*natsjs.Broker
	srv *embedded.Server
}

// Close closes the Broker, then shuts the embedded server down.
func (e *embeddedBroker) Close(ctx context.Context) error {
	return errors.Join(e.Broker.Close(ctx), e.srv.Shutdown(ctx))
}

func openEmbedded(ctx context.Context, u *url.URL) (broker.Broker, error) {
	dir := u.Opaque
	if dir == "" {
		dir = u.Path
	}
	if u.Host != "" || u.User != nil {
		return nil, fmt.Errorf("nats+embedded takes a directory, not a host: write nats+embedded:///absolute/dir or nats+embedded:relative/dir")
	}
	if dir == "" || dir == "/" {
		return nil, errors.New("nats+embedded needs a storage directory: nats+embedded:///absolute/dir or nats+embedded:relative/dir")
	}
	p := newParams(u, "shards", "listen", "certfile", "keyfile", "cacertfile")
	var opts []natsjs.Option
	if p.has("shards") {
		opts = append(opts, natsjs.WithShards(p.int("shards", 0, 1, 1024)))
	}
	var eopts []embedded.Option
	if p.has("listen") {
		eopts = append(eopts, embedded.WithListenPort(p.int("listen", 0, 0, 65535)))
	}
	if p.err != nil {
		return nil, p.err
	}
	if cert, key, ca := p.q.Get("certfile"), p.q.Get("keyfile"), p.q.Get("cacertfile"); cert != "" || key != "" || ca != "" {
		if !p.has("listen") {
			return nil, errors.New("parameters certfile, keyfile and cacertfile are for the listener: add listen=PORT")
		}
		tc, err := tlsconfig.Server(cert, key, ca)
		if err != nil {
			return nil, err
		}
		eopts = append(eopts, embedded.WithTLS(tc))
	}
	srv, err := embedded.Start(ctx, dir, eopts...)
	if err != nil {
		return nil, err
	}
	b, err := srv.Broker(ctx, opts...)
	if err != nil {
		return nil, errors.Join(err, srv.Shutdown(context.WithoutCancel(ctx)))
	}
	return &embeddedBroker{Broker: b, srv: srv}, nil
}

func openNATS(ctx context.Context, u *url.URL) (broker.Broker, error) {
	if u.Host == "" {
		return nil, errors.New("nats:// needs a host: nats://host:4222")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("nats:// takes no path, got %q", u.Path)
	}
	p := newParams(u, append([]string{"shards", "replicas"}, connurl.TLSParams...)...)
	var opts []natsjs.Option
	if p.has("shards") {
		opts = append(opts, natsjs.WithShards(p.int("shards", 0, 1, 1024)))
	}
	if p.has("replicas") {
		opts = append(opts, natsjs.WithReplicas(p.int("replicas", 0, 1, 5)))
	}
	if p.err != nil {
		return nil, p.err
	}
	tc, err := connurl.TLS(p.q)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		opts = append(opts, natsjs.WithNATSOptions(nats.Secure(tc)))
	}
	servers := strings.Split(u.Host, ",")
	for i, s := range servers {
		su := url.URL{Scheme: "nats", User: u.User, Host: s}
		servers[i] = su.String()
	}
	return natsjs.Open(ctx, strings.Join(servers, ","), opts...)
}

func openKafka(ctx context.Context, u *url.URL) (broker.Broker, error) {
	if u.Host == "" {
		return nil, errors.New("kafka:// needs the address of at least one broker: kafka://host:9092")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("kafka:// takes no path, got %q", u.Path)
	}
	p := newParams(u, append([]string{"partitions", "replication", "sasl", "format"}, connurl.TLSParams...)...)
	var opts []kafka.Option
	if eventuate, err := p.eventuateFormat(); err != nil {
		return nil, err
	} else if eventuate {
		opts = append(opts, kafka.WithEventuateFormat())
	}
	if p.has("partitions") {
		opts = append(opts, kafka.WithPartitions(p.int("partitions", 0, 1, 10000)))
	}
	if p.has("replication") {
		opts = append(opts, kafka.WithReplicationFactor(p.int("replication", 0, 1, 32767)))
	}
	if p.err != nil {
		return nil, p.err
	}
	var kopts []kgo.Opt
	tc, err := connurl.TLS(p.q)
	if err != nil {
		return nil, err
	}
	if tc != nil {
		kopts = append(kopts, kgo.DialTLSConfig(tc))
	}
	mech := p.q.Get("sasl")
	if u.User == nil && mech != "" {
		return nil, fmt.Errorf("parameter sasl=%q needs a user name and password in the URL", mech)
	}
	if u.User != nil {
		m, err := saslMechanism(mech, u.User)
		if err != nil {
			return nil, err
		}
		kopts = append(kopts, kgo.SASL(m))
	}
	if len(kopts) > 0 {
		opts = append(opts, kafka.WithClientOptions(kopts...))
	}
	return kafka.Open(ctx, strings.Split(u.Host, ","), opts...)
}

// saslMechanism returns the SASL mechanism mech (scram-sha-512 if empty)
// with the URL's credentials.
func saslMechanism(mech string, user *url.Userinfo) (sasl.Mechanism, error) {
	pass, _ := user.Password()
	name := user.Username()
	switch strings.ToLower(mech) {
	case "", "scram-sha-512":
		return scram.Auth{User: name, Pass: pass}.AsSha512Mechanism(), nil
	case "scram-sha-256":
		return scram.Auth{User: name, Pass: pass}.AsSha256Mechanism(), nil
	case "plain":
		return plain.Auth{User: name, Pass: pass}.AsMechanism(), nil
	}
	return nil, fmt.Errorf("parameter sasl=%q: want scram-sha-512, scram-sha-256 or plain", mech)
}

// amqpTLSParams are the parameters that only amqps:// URLs take.
var amqpTLSParams = []string{"certfile", "keyfile", "cacertfile", "server_name_indication"}

func openAMQP(ctx context.Context, u *url.URL) (broker.Broker, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("%s:// needs a host: %s://user:pass@host:5672/vhost", u.Scheme, u.Scheme)
	}
	known := []string{"shards", "connection_timeout", "format", "partitions", "heartbeat", "channel_max", "auth_mechanism"}
	if u.Scheme == "amqps" {
		known = append(known, amqpTLSParams...)
	}
	for _, k := range amqpTLSParams {
		if u.Scheme == "amqp" && u.Query().Has(k) {
			return nil, fmt.Errorf("parameter %s is for TLS: write amqps://", k)
		}
	}
	p := newParams(u, known...)
	var opts []amqp.Option
	if p.has("shards") {
		opts = append(opts, amqp.WithShards(p.int("shards", 0, 1, 1<<10)))
	}
	eventuate, err := p.eventuateFormat()
	if err != nil {
		return nil, err
	}
	if eventuate {
		opts = append(opts, amqp.WithEventuateFormat())
	}
	if p.has("partitions") {
		if !eventuate {
			return nil, errors.New("parameter partitions is for format=eventuate (Courier's own format has shards)")
		}
		opts = append(opts, amqp.WithEventuatePartitions(p.int("partitions", 0, 1, 1024)))
	}
	if p.has("connection_timeout") {
		ms := p.int("connection_timeout", 0, 1, 1<<31-1)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	p.int("heartbeat", 0, 0, 1<<16-1)
	p.int("channel_max", 0, 0, 1<<16-1)
	if p.err != nil {
		return nil, p.err
	}
	q := p.q
	q.Del("shards")
	q.Del("connection_timeout")
	q.Del("format")
	q.Del("partitions")
	rest := *u
	rest.RawQuery = q.Encode()
	return amqp.Open(ctx, rest.String(), opts...)
}

func openActiveMQ(ctx context.Context, u *url.URL) (broker.Broker, error) {
	if u.Host == "" {
		return nil, fmt.Errorf("activemq:// needs a host: activemq://host:61613")
	}
	p := newParams(u, append([]string{"shards"}, connurl.TLSParams...)...)
	var opts []activemq.Option
	if p.has("shards") {
		opts = append(opts, activemq.WithShards(p.int("shards", 0, 1, activemq.MaxShards)))
	}
	if p.err != nil {
		return nil, p.err
	}
	q := p.q
	q.Del("shards")
	rest := *u
	rest.RawQuery = q.Encode()
	return activemq.Open(ctx, rest.String(), opts...)
}
