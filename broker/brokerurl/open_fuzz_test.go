package brokerurl_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/courier-go/courier/broker/brokerurl"
	"github.com/courier-go/courier/internal/connurl/connurltest"
)

// FuzzOpen opens broker URLs of any content with a context already
// ended, so that nothing is reached: Open must refuse or open, never
// panic, and its error must not show the URL's password or token.
//
//	go test -fuzz FuzzOpen ./broker/brokerurl/
func FuzzOpen(f *testing.F) {
	for _, raw := range []string{"memory://?shards=4", "nats+embedded:///tmp/x?listen=0&shards=2", "nats://u:s3cret@h:4222,h2:4222?replicas=3",
		"nats://t0ken@h?tls=true", "kafka://u:p%40ss@h:9092?sasl=plain&partitions=3", "amqps://u:s3cret@h:5671/vhost?heartbeat=5&auth_mechanism=EXTERNAL",
		"amqp://u:s3cret@h:bad:port/", "kafka://u:s3cret@[::1", "nats://h?tls=maybe"} {
		f.Add(raw)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err == nil && (strings.Contains(u.RawQuery, "file") || u.Scheme == "nats+embedded" && u.Query().Has("listen")) {
			return // files of the machine, ports of the machine
		}
		b, err := brokerurl.Open(ctx, raw)
		if err == nil {
			b.Close(context.Background())
			return
		}
		connurltest.CheckHidden(t, raw, err)
	})
}
