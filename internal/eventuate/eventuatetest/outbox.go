package eventuatetest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/courier-go/courier/broker"
	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/message"
	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// Inserts returns Eventuate's INSERT into its outbox table
// (inserts.sql), keyed by dialect name and id mode: "postgres
// application-id", "mysql database-id" and so on.
func Inserts(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	label := ""
	for _, line := range strings.Split(strings.TrimSpace(string(Fixture(t, "inserts.sql"))), "\n") {
		if l, ok := strings.CutPrefix(line, "-- "); ok {
			label = l
		} else {
			out[label] = line
		}
	}
	return out
}

// Outbox is what WriteOutbox wrote into Eventuate's outbox table.
type Outbox struct {
	table   outbox.EventuateTable
	db      *sql.DB
	d       *sqldb.Dialect
	headers map[string]string // of Eventuate's row, as Eventuate wrote them
	payload string
	// Courier holds the messages Courier's Writer wrote, in order.
	Courier []*message.Message
}

// WriteOutbox writes into Eventuate's outbox table of db, made by
// Eventuate's schema files: the event of event.envelope with Eventuate's
// own INSERT and the arguments Eventuate passes it; another with the same
// INSERT as published already (Eventuate's
// insertPublishedMessageIntoMessageTable), which no relay publishes; and
// two messages of one partition key, with Courier's Writer, in one
// transaction. It checks that Courier's rows are as Eventuate's CDC reads
// them: the ID in the headers, the id column that ID (or empty in
// database-id mode), published 0, message_partition NULL and a
// creation_time.
func WriteOutbox(t *testing.T, db *sql.DB, d *sqldb.Dialect, table outbox.EventuateTable) *Outbox {
	t.Helper()
	ctx := context.Background()
	var java struct {
		Payload string            `json:"payload"`
		Headers map[string]string `json:"headers"`
	}
	env := Fixture(t, "event.envelope")
	if err := json.Unmarshal(env, &java); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Headers json.RawMessage `json:"headers"`
	}
	if err := json.Unmarshal(env, &raw); err != nil {
		t.Fatal(err)
	}
	headers := string(raw.Headers) // as Jackson wrote them
	mode := "application-id"
	if table.DatabaseIDs {
		mode = "database-id"
		// verifyNoID: no ID in the headers in database-id mode.
		headers = strings.Replace(headers, `,"ID":"`+EventID+`"`, "", 1)
		delete(java.Headers, message.HeaderID)
	}
	schema := strings.TrimSuffix(table.TableName(), ".message")
	stmt := d.Rebind(strings.Replace(Inserts(t)[d.Name()+" "+mode], "eventuate.", schema+".", 1))
	// The unpublished row has the fixture's ID, EventID, the published
	// one another.
	for i, published := range []int{0, 1} {
		args := []any{EventChannel, headers, java.Payload, published, nil}
		if !table.DatabaseIDs {
			args = append([]any{fmt.Sprintf("%s%d", EventID[:len(EventID)-1], i)}, args...)
		}
		if _, err := db.ExecContext(ctx, stmt, args...); err != nil {
			t.Fatalf("Eventuate's INSERT on Eventuate's table: %v", err)
		}
	}

	o := &Outbox{table: table, db: db, d: d, headers: java.Headers, payload: java.Payload, Courier: []*message.Message{
		message.NewBuilder([]byte(`{"n":1,"note":"tab\tquote\""}`)).WithPartitionKey("o-1").WithHeader("x-trace", "t1").Build(),
		message.NewBuilder([]byte(`{"n":2}`)).WithPartitionKey("o-1").Build(),
	}}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := outbox.NewWriter(d, outbox.WithEventuateTable(table)).Send(ctx, tx, "courier.orders", o.Courier...); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}

	rows, err := db.QueryContext(ctx, "SELECT id, headers, payload, published, message_partition, creation_time FROM "+table.TableName()+" WHERE destination = 'courier.orders'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			id, hs, payload    string
			published          int
			partition, created sql.NullInt64
		)
		if err := rows.Scan(&id, &hs, &payload, &published, &partition, &created); err != nil {
			t.Fatal(err)
		}
		var h map[string]string
		if err := json.Unmarshal([]byte(hs), &h); err != nil {
			t.Fatalf("headers %s: %v", hs, err)
		}
		m := o.Courier[0]
		if h[message.HeaderID] == o.Courier[1].ID {
			m = o.Courier[1]
		}
		wantID := m.ID
		if table.DatabaseIDs {
			wantID = "" // the CDC takes the ID from the headers
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
	return o
}

// Channels are the channels the messages of WriteOutbox go to.
var Channels = []string{EventChannel, "courier.orders"}

// Check checks what a relay published from the outbox: Eventuate's
// unpublished row, with the ID Eventuate's CDC gives it (its own, or in
// database-id mode its dbid and the table's outbox id), its headers and
// payload, and Courier's two messages, in order, as written; and nothing
// else.
func (o *Outbox) Check(t *testing.T, got []*message.Message) {
	t.Helper()
	wantJavaID := EventID
	if o.table.DatabaseIDs {
		var dbid int64
		// The first of WriteOutbox's rows of Eventuate's, the one not
		// written as published.
		if err := o.db.QueryRow(o.d.Rebind("SELECT MIN(dbid) FROM "+o.table.TableName()+" WHERE destination = ?"), EventChannel).Scan(&dbid); err != nil {
			t.Fatal(err)
		}
		wantJavaID = fmt.Sprintf("%016x-%016x", dbid, o.table.OutboxID)
	}
	var courier, java []*message.Message
	for _, m := range got {
		if m.Destination() == "courier.orders" {
			courier = append(courier, m)
		} else {
			java = append(java, m)
		}
	}
	want := maps.Clone(o.headers)
	delete(want, message.HeaderID)
	if len(java) != 1 || java[0].ID != wantJavaID || string(java[0].Payload) != o.payload || !maps.Equal(java[0].Headers, message.Headers(want)) {
		t.Errorf("Eventuate's rows published as %v, want one: %s %v %s", java, wantJavaID, want, o.payload)
	}
	if len(courier) != 2 || courier[0].ID != o.Courier[0].ID || courier[1].ID != o.Courier[1].ID {
		t.Fatalf("Courier's rows published as %v, want %s then %s", courier, o.Courier[0].ID, o.Courier[1].ID)
	}
	if string(courier[0].Payload) != string(o.Courier[0].Payload) || courier[0].Header("x-trace") != "t1" || courier[0].PartitionKey() != "o-1" {
		t.Errorf("Courier's first row published as %+v", courier[0])
	}
}

// CheckRelay checks a relay of Eventuate's outbox table: start makes the
// relay, publishing to the broker it is given, and runs it; the rows of
// WriteOutbox, written once it runs, must arrive as Check wants them, and
// the relay must count three messages published.
func CheckRelay(t *testing.T, db *sql.DB, d *sqldb.Dialect, table outbox.EventuateTable, start func(b broker.Producer) *outbox.Relay) {
	t.Helper()
	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	got := relaytest.Collect(t, b, Channels...)
	relay := start(b)
	written := WriteOutbox(t, db, d, table)
	relaytest.Eventually(t, "three messages", func() bool { return got.Count() >= 3 })
	written.Check(t, got.All())
	if s := relay.Stats(); s.Published != 3 {
		t.Errorf("%d messages published, want 3", s.Published)
	}
}

// Modes runs f as a subtest for each id mode of Eventuate's outbox table:
// "application-id", then "database-id" (dbIDs set).
func Modes(t *testing.T, f func(t *testing.T, dbIDs bool)) {
	t.Helper()
	t.Run("application-id", func(t *testing.T) { f(t, false) })
	t.Run("database-id", func(t *testing.T) { f(t, true) })
}
