package couriertest

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
	"time"

	"github.com/courier-go/courier/message"
)

// Outbox is a Sender over a database's outbox table, for services that
// send through an outbox.Writer: the assertions read the messages that
// committed transactions wrote and no relay has published yet (run none in
// the test). It fails the test when the table cannot be read.
//
//	o := couriertest.NewOutbox(t, db)
//	couriertest.ReplySent[CreditReserved](t, o, commandID, message.ReplyOutcomeSuccess)
type Outbox struct {
	t  testing.TB
	db *sql.DB
}

// NewOutbox returns an Outbox over db's message table.
func NewOutbox(t testing.TB, db *sql.DB) *Outbox { return &Outbox{t: t, db: db} }

// Sent returns the rows of the outbox table in the order they were
// written.
func (o *Outbox) Sent() []Sent {
	o.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := o.db.QueryContext(ctx, "SELECT destination, id, headers, payload FROM message ORDER BY seq")
	if err != nil {
		o.t.Fatalf("couriertest: reading the outbox: %v", err)
	}
	defer rows.Close()
	var sent []Sent
	for rows.Next() {
		var (
			s       Sent
			m       message.Message
			headers string
		)
		if err := rows.Scan(&s.Channel, &m.ID, &headers, &m.Payload); err != nil {
			o.t.Fatalf("couriertest: reading the outbox: %v", err)
		}
		if err := json.Unmarshal([]byte(headers), &m.Headers); err != nil {
			o.t.Fatalf("couriertest: headers of outbox message %s: %v", m.ID, err)
		}
		s.Message = &m
		sent = append(sent, s)
	}
	if err := rows.Err(); err != nil {
		o.t.Fatalf("couriertest: reading the outbox: %v", err)
	}
	return sent
}

// SentTo returns what s sent to channel, in order.
func SentTo(s Sender, channel string) []Sent {
	var out []Sent
	for _, sent := range s.Sent() {
		if sent.Channel == channel {
			out = append(out, sent)
		}
	}
	return out
}
