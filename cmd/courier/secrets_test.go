package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/testnet"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/sqldb"
)

// secretShown returns the first form of the secret "s3cret" that s shows.
func secretShown(s string) string {
	for _, form := range []string{"s3cret", "s3cr%65t", "s3/cret"} {
		if strings.Contains(s, form) {
			return form
		}
	}
	return ""
}

// TestRelayReportsNoSecretAtStart starts the relay with database and
// broker URLs that fail, each holding a password or token in another
// form (malformed, percent-encoded otherwise than net/url would, reserved
// characters unencoded, a NATS token), and checks that neither its error
// nor its log shows it.
func TestRelayReportsNoSecretAtStart(t *testing.T) {
	_, sqlite := sqliteOutbox(t)
	closed := testnet.ClosedPort(t)
	for _, c := range []struct{ db, broker string }{
		{"postgres://courier:s3cret@h:bad/courier", "memory://"},
		{"postgres://courier:s3cr%65t@" + closed + "/courier?sslmode=disable", "memory://"},
		{"postgres://courier:s3/cret@" + closed + "/courier?sslmode=disable", "memory://"},
		{"postgres://" + closed + "/courier?user=courier&password=s3cret&sslmode=disable", "memory://"},
		{"mysql://courier:s3cr%65t@" + closed + "/courier", "memory://"},
		{sqlite, "nats://courier:s3cr%65t@" + closed},
		{sqlite, "nats://s3cret@" + closed},
		{sqlite, "amqp://courier:s3cret@h:bad:port/"},
		{sqlite, "kafka://courier:s3cr%65t@" + closed + "?sasl=plain"},
	} {
		stderr, err := runBriefly(t, []string{"relay", "-db", c.db, "-broker", c.broker, "-listen", "", "-log-level", "debug"})
		if form := secretShown(err.Error() + stderr); form != "" {
			t.Errorf("relay -db %s -broker %s shows %q:\n%v\n%s", c.db, c.broker, form, err, stderr)
		}
	}
}

// quotingBroker fails every Send with an error that quotes the broker's
// URL as written, as a client library might.
type quotingBroker struct {
	broker.Broker
	url string
}

func (b *quotingBroker) Send(ctx context.Context, channel string, msgs ...*message.Message) error {
	return fmt.Errorf("dial %s: connection refused", b.url)
}

// TestRelayShowsNoSecretWhileRunning runs the relay against a broker
// whose errors quote its URL, and checks that no log line, /readyz
// answer or metric shows the URL's password, while they do report the
// failure.
func TestRelayShowsNoSecretWhileRunning(t *testing.T) {
	db, dbURL := sqliteOutbox(t)
	mem, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &relayCommand{openBroker: func(_ context.Context, raw string) (broker.Broker, error) {
		return &quotingBroker{Broker: mem, url: raw}, nil
	}}
	r := startRelay(t, cmd, "-db", dbURL, "-broker", "nats://courier:s3cr%65t@127.0.0.1:4222", "-poll-interval", "10ms",
		"-log-level", "debug", "-log-format", "json")
	commitMessages(t, db, sqldb.SQLite, 1)
	readyz := "http://" + r.addr + "/readyz"
	var body string
	r.eventually(t, "/readyz to report the failure", func() bool {
		var code int
		code, body = getStatus(t, readyz)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "connection refused")
	})
	slog.Default().Warn("a library quotes nats://courier:s3cr%65t@127.0.0.1:4222", "error", errors.New("auth s3cret refused"))
	log.Print("the standard logger quotes s3cret")
	metrics := get(t, "http://"+r.addr+"/metrics")
	r.wait(t)
	logs := r.logs.String()
	if !strings.Contains(logs, "connection refused") || !strings.Contains(logs, "a library quotes") {
		t.Fatalf("the log does not report the failure:\n%s", logs)
	}
	for what, text := range map[string]string{"/readyz": body, "/metrics": metrics, "the log": logs} {
		if form := secretShown(text); form != "" {
			t.Errorf("%s shows %q:\n%s", what, form, text)
		}
	}
}
