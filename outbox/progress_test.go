package outbox_test

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// syncBuffer is a bytes.Buffer safe for the relay's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A running relay logs a summary line at INFO level every interval, with
// what it published since the last one, whether it publishes or not.
func TestProgressLog(t *testing.T) {
	db := testdb.SQLite(t)
	b := newBroker(t)
	got := relaytest.Collect(t, b, "orders")
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r, err := outbox.NewRelay(db.DB, sqldb.SQLite, b, outbox.WithLogger(logger), outbox.WithProgressInterval(50*time.Millisecond),
		outbox.WithPollInterval(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	relaytest.Run(t, r)
	relaytest.WriteTransactions(t, db.DB, outbox.NewWriter(sqldb.SQLite), 5).Check(t, got)
	relaytest.Eventually(t, "a summary of the published messages", func() bool {
		return strings.Contains(logs.String(), "published_total="+strconv.Itoa(got.Count()))
	})
	n := strings.Count(logs.String(), "msg=\"courier: outbox relay progress\"")
	relaytest.Eventually(t, "summaries while idle", func() bool {
		return strings.Count(logs.String(), "msg=\"courier: outbox relay progress\"") >= n+2
	})
	var last string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "msg=\"courier: outbox relay progress\"") {
			last = line
		}
	}
	for _, want := range []string{"level=INFO", "leader=true", "published=0", "rate_per_second=0", "lag=0s"} {
		if !strings.Contains(last, want) {
			t.Errorf("the last summary %q lacks %s", last, want)
		}
	}
	if _, err := outbox.NewRelay(db.DB, sqldb.SQLite, b, outbox.WithProgressInterval(-time.Second)); err == nil {
		t.Error("a negative interval was accepted")
	}
}
