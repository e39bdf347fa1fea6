package pgcdc

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/courier-go/courier/outbox"
)

// relation is the outbox table's layout as the log describes it.
type relation struct {
	id, destination, headers, payload int
}

// session is one replication connection's stream.
type session struct {
	r         *Relay
	conn      *pgconn.PgConn
	relations map[uint32]*relation

	inTx      bool
	tx        []outbox.Row
	confirmed pglogrepl.LSN // last position confirmed to the server

	nextStatus, nextBeat time.Time
}

func (s *session) run(ctx context.Context) error {
	s.nextBeat = time.Now().Add(s.r.cfg.heartbeat)
	for {
		if err := s.tick(ctx); err != nil {
			return err
		}
		deadline := s.nextStatus
		if s.nextBeat.Before(deadline) {
			deadline = s.nextBeat
		}
		rctx, cancel := context.WithDeadline(ctx, deadline)
		raw, err := s.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if pgconn.Timeout(err) && ctx.Err() == nil {
				continue
			}
			return fmt.Errorf("pgcdc: receiving from the log: %w", err)
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("pgcdc: replication: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyData:
			if err := s.copyData(ctx, m.Data); err != nil {
				return err
			}
		}
	}
}

// tick writes a heartbeat when it is due, reports the confirmed position
// to the server, and ends the session when the lease is no longer
// certainly held.
//
// The lease is renewed beside the stream (Relay.keeper), on its own
// cadence of a quarter of its TTL, not the heartbeat's: renewed at each
// heartbeat, with the defaults (both 10s) it lapsed after 7.5s, the
// stream ended and restarted from the last position confirmed to the
// server, and every row published since was published again; renewed
// inline, a slow commit of the lease row held the stream back.
func (s *session) tick(ctx context.Context) error {
	now := time.Now()
	if !now.Before(s.nextBeat) {
		s.nextBeat = now.Add(s.r.cfg.heartbeat)
		// A logical message in the log: its position can be confirmed
		// when it arrives, so the slot moves on even while the outbox
		// is idle and other tables fill the WAL.
		if _, err := s.r.db.ExecContext(ctx, "SELECT pg_logical_emit_message(false, $1, '')", heartbeatPrefix); err != nil {
			s.r.fail(fmt.Errorf("pgcdc: heartbeat: %w", err))
		}
	}
	// A late renewal holds the stream, publishing nothing, rather than
	// ending it: the server would send every row since the last
	// confirmed position again.
	if err := s.r.keeper.Await(ctx); err != nil {
		return err
	}
	if !now.Before(s.nextStatus) {
		s.nextStatus = now.Add(s.r.cfg.status)
		if s.confirmed > 0 {
			if err := pglogrepl.SendStandbyStatusUpdate(ctx, s.conn, pglogrepl.StandbyStatusUpdate{
				WALWritePosition: s.confirmed, WALFlushPosition: s.confirmed, WALApplyPosition: s.confirmed,
			}); err != nil {
				return fmt.Errorf("pgcdc: status update: %w", err)
			}
		}
	}
	return nil
}

func (s *session) copyData(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		pkm, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return fmt.Errorf("pgcdc: keepalive: %w", err)
		}
		if pkm.ReplyRequested {
			s.nextStatus = time.Time{}
		}
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return fmt.Errorf("pgcdc: log data: %w", err)
		}
		return s.logical(ctx, xld.WALData)
	}
	return nil
}

func (s *session) logical(ctx context.Context, walData []byte) error {
	msg, err := pglogrepl.Parse(walData)
	if err != nil {
		return fmt.Errorf("pgcdc: decoding the log: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		rel, err := layout(m)
		if err != nil {
			return err
		}
		s.relations[m.RelationID] = rel
	case *pglogrepl.BeginMessage:
		s.inTx, s.tx = true, s.tx[:0]
	case *pglogrepl.InsertMessage:
		rel := s.relations[m.RelationID]
		if rel == nil {
			return fmt.Errorf("pgcdc: insert into unknown relation %d", m.RelationID)
		}
		row, err := rel.row(m.Tuple)
		if err != nil {
			return err
		}
		s.tx = append(s.tx, row)
	case *pglogrepl.CommitMessage:
		s.inTx = false
		if len(s.tx) > 0 {
			if err := s.publish(ctx, s.tx); err != nil {
				return err
			}
			s.r.lastCommit.Store(m.CommitTime.UnixMilli())
		}
		s.confirm(m.TransactionEndLSN)
	case *pglogrepl.LogicalDecodingMessage:
		if m.Prefix == heartbeatPrefix && !s.inTx {
			s.confirm(m.LSN)
		}
	}
	return nil
}

func (s *session) confirm(lsn pglogrepl.LSN) {
	if lsn > s.confirmed {
		s.confirmed = lsn
		s.r.confirmed.Store(uint64(lsn))
	}
}

// publish publishes one transaction's rows, retrying what the broker did
// not confirm until all is confirmed, the lease is lost or ctx ends. While
// it waits it keeps the lease and the replication connection alive.
func (s *session) publish(ctx context.Context, rows []outbox.Row) error {
	pending := rows
	for failures := 0; ; failures++ {
		res := s.r.rows.Publish(ctx, pending)
		if len(res.Done) == len(pending) {
			return nil
		}
		pending = slices.DeleteFunc(slices.Clone(pending), func(r outbox.Row) bool { return slices.Contains(res.Done, r.ID) })
		if res.Err != nil {
			s.r.fail(res.Err)
		}
		wait := min(50*time.Millisecond<<min(failures, 6), 2*time.Second)
		for end := time.Now().Add(wait); time.Now().Before(end); {
			if err := s.tick(ctx); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(min(time.Until(end), 50*time.Millisecond))
		}
	}
}

// layout finds the columns the relay reads.
func layout(m *pglogrepl.RelationMessage) (*relation, error) {
	rel := &relation{id: -1, destination: -1, headers: -1, payload: -1}
	for i, c := range m.Columns {
		switch c.Name {
		case "id":
			rel.id = i
		case "destination":
			rel.destination = i
		case "headers":
			rel.headers = i
		case "payload":
			rel.payload = i
		}
	}
	if rel.id < 0 || rel.destination < 0 || rel.headers < 0 || rel.payload < 0 {
		var names []string
		for _, c := range m.Columns {
			names = append(names, c.Name)
		}
		return nil, fmt.Errorf("%w: %s.%s has columns %v; it needs id, destination, headers and payload (see sqldb/migrations/postgres)",
			ErrColumnLayout, m.Namespace, m.RelationName, names)
	}
	return rel, nil
}

func (rel *relation) row(t *pglogrepl.TupleData) (outbox.Row, error) {
	text := func(i int) (string, error) {
		if t == nil || i >= len(t.Columns) {
			return "", fmt.Errorf("pgcdc: insert with %d columns, column %d missing", len(t.Columns), i)
		}
		c := t.Columns[i]
		switch c.DataType {
		case pglogrepl.TupleDataTypeText:
			return string(c.Data), nil
		case pglogrepl.TupleDataTypeNull:
			return "", nil
		}
		return "", fmt.Errorf("pgcdc: column %d sent as %q, not as text", i, c.DataType)
	}
	var row outbox.Row
	var err error
	if row.ID, err = text(rel.id); err != nil {
		return row, err
	}
	if row.Destination, err = text(rel.destination); err != nil {
		return row, err
	}
	if row.Headers, err = text(rel.headers); err != nil {
		return row, err
	}
	payload, err := text(rel.payload)
	if err != nil {
		return row, err
	}
	// bytea in hex output format: \x followed by hex digits.
	if len(payload) >= 2 && payload[0] == '\\' && payload[1] == 'x' {
		if row.Payload, err = hex.DecodeString(payload[2:]); err != nil {
			return row, fmt.Errorf("pgcdc: payload of %s: %w", row.ID, err)
		}
	} else {
		row.Payload = []byte(payload)
	}
	return row, nil
}
