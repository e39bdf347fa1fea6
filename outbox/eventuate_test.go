package outbox_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

func readFixture(t *testing.T, path ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(path...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestEventuateTable: on Eventuate's own table, in both id modes, a row
// written by Eventuate's INSERT and rows written by Courier's Writer are
// published by Courier's relay as Eventuate's CDC publishes them, and
// Courier's rows are the rows Eventuate's CDC expects.
func TestEventuateTable(t *testing.T) {
	// The event Eventuate writes (internal/eventuate/testdata/README.md).
	var java struct {
		Payload string          `json:"payload"`
		Headers json.RawMessage `json:"headers"`
	}
	if err := json.Unmarshal([]byte(readFixture(t, "..", "internal", "eventuate", "testdata", "event.envelope")), &java); err != nil {
		t.Fatal(err)
	}
	const javaID = "0000018c39a0b5e2-0242ac1200050000"
	inserts := map[string]string{}
	label := ""
	for _, line := range strings.Split(strings.TrimSpace(readFixture(t, "testdata", "eventuate", "inserts.sql")), "\n") {
		if l, ok := strings.CutPrefix(line, "-- "); ok {
			label = l
		} else {
			inserts[label] = line
		}
	}

	for _, d := range []*sqldb.Dialect{sqldb.Postgres, sqldb.MySQL} {
		for _, dbIDs := range []bool{false, true} {
			mode := "application-id"
			if dbIDs {
				mode = "database-id"
			}
			t.Run(d.Name()+"/"+mode, func(t *testing.T) {
				db := testdb.Open(t, d) // the relay's lease table
				schema := testdb.Eventuate(t, db, dbIDs)
				table := outbox.EventuateTable{Schema: schema, DatabaseIDs: dbIDs, OutboxID: 5}
				ctx := context.Background()

				// Eventuate's INSERT, with the arguments Eventuate passes.
				headers := string(java.Headers)
				args := []any{"net.chrisrichardson.ftgo.orderservice.domain.Order", headers, java.Payload, 0, nil}
				if dbIDs {
					headers = strings.Replace(headers, `,"ID":"`+javaID+`"`, "", 1) // verifyNoID: no ID in database-id mode
					args[1] = headers
				} else {
					args = append([]any{javaID}, args...)
				}
				stmt := strings.Replace(inserts[d.Name()+" "+mode], "eventuate.", schema+".", 1)
				if _, err := db.ExecContext(ctx, d.Rebind(stmt), args...); err != nil {
					t.Fatalf("Eventuate's INSERT on Eventuate's table: %v", err)
				}

				// Courier's Writer.
				w := outbox.NewWriter(d, outbox.WithEventuateTable(table))
				sent := []*message.Message{
					message.NewBuilder([]byte(`{"n":1,"note":"tab\tquote\""}`)).WithPartitionKey("o-1").WithHeader("x-trace", "t1").Build(),
					message.NewBuilder([]byte(`{"n":2}`)).WithPartitionKey("o-1").Build(),
				}
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Send(ctx, tx, "courier.orders", sent...); err != nil {
					t.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}

				// Courier's rows as Eventuate's CDC reads them.
				rows, err := db.QueryContext(ctx, "SELECT id, headers, payload, published, message_partition, creation_time FROM "+schema+".message WHERE destination = 'courier.orders'")
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for rows.Next() {
					var (
						id, hs, payload string
						published       int
						partition       sql.NullInt64
						created         sql.NullInt64
					)
					if err := rows.Scan(&id, &hs, &payload, &published, &partition, &created); err != nil {
						t.Fatal(err)
					}
					var h map[string]string
					if err := json.Unmarshal([]byte(hs), &h); err != nil {
						t.Fatalf("headers %s: %v", hs, err)
					}
					m := sent[0]
					if h[message.HeaderID] == sent[1].ID {
						m = sent[1]
					}
					wantID := m.ID
					if dbIDs {
						wantID = "" // the row's id is empty; the CDC takes the ID from the headers
					}
					if id != wantID || h[message.HeaderID] != m.ID || h[message.HeaderDestination] != "courier.orders" || h[message.HeaderDate] == "" || payload != string(m.Payload) ||
						published != 0 || partition.Valid || !created.Valid || time.Since(time.UnixMilli(created.Int64)).Abs() > time.Hour {
						t.Errorf("row id %q headers %s payload %s published %d partition %v creation_time %v", id, hs, payload, published, partition, created)
					}
					n++
				}
				if err := rows.Err(); err != nil || n != 2 {
					t.Fatalf("%d rows of Courier's, %v", n, err)
				}

				// Courier's relay.
				b := newBroker(t)
				got := relaytest.Collect(t, b, "courier.orders", "net.chrisrichardson.ftgo.orderservice.domain.Order")
				runRelay(t, db.DB, d, b, outbox.PollEventuateTable(table), outbox.WithKeepPublished(), outbox.WithPollInterval(20*time.Millisecond))
				relaytest.Eventually(t, "three messages", func() bool { return got.Count() >= 3 })

				wantJavaID := javaID
				if dbIDs {
					var dbid int64
					if err := db.QueryRowContext(ctx, "SELECT dbid FROM "+schema+".message WHERE destination = 'net.chrisrichardson.ftgo.orderservice.domain.Order'").Scan(&dbid); err != nil {
						t.Fatal(err)
					}
					wantJavaID = fmt.Sprintf("%016x-%016x", dbid, 5)
				}
				var courier []*message.Message
				for _, m := range got.All() {
					if m.Destination() == "courier.orders" {
						courier = append(courier, m)
						continue
					}
					var want map[string]string
					if err := json.Unmarshal([]byte(headers), &want); err != nil {
						t.Fatal(err)
					}
					delete(want, message.HeaderID)
					if m.ID != wantJavaID || string(m.Payload) != java.Payload || !maps.Equal(m.Headers, message.Headers(want)) {
						t.Errorf("Eventuate's row published as %s %v %s, want %s %v %s", m.ID, m.Headers, m.Payload, wantJavaID, want, java.Payload)
					}
				}
				if len(courier) != 2 || courier[0].ID != sent[0].ID || courier[1].ID != sent[1].ID {
					t.Fatalf("Courier's rows published as %v, want %s then %s", courier, sent[0].ID, sent[1].ID)
				}
				if string(courier[0].Payload) != string(sent[0].Payload) || courier[0].Header("x-trace") != "t1" || courier[0].PartitionKey() != "o-1" {
					t.Errorf("Courier's first row published as %+v", courier[0])
				}
				relaytest.Eventually(t, "every row marked published", func() bool {
					var left int
					db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+schema+".message WHERE published = 0").Scan(&left)
					return left == 0
				})
				if got.Count() != 3 {
					t.Errorf("%d messages published, want 3 (Eventuate's starting row, published already, is not)", got.Count())
				}
			})
		}
	}
}
