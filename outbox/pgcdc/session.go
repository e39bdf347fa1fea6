package pgcdc

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/internal/relay"
)

// maxBatch is how many rows of committed transactions a Read gathers
// from what the server has already sent before it returns them.
const maxBatch = 1000

// relation is the outbox table's layout as the log describes it.
type relation struct {
	id, destination, headers, payload int
	// eventuate is set for Eventuate's table (WithEventuateTable), with
	// its published and dbid columns (dbid -1 in application-id mode).
	eventuate       *outbox.EventuateTable
	published, dbid int
}

// reader is one replication connection's stream.
type reader struct {
	src       *Source
	conn      *pgconn.PgConn
	lead      relay.Lead
	relations map[uint32]*relation

	inTx bool
	tx   []relay.Row // the rows of the transaction being received
	// batch holds the rows of the transactions received, in commit
	// order; batchEnd is the position after the last of them and
	// batchCommit its commit time.
	batch       []relay.Row
	batchEnd    pglogrepl.LSN
	batchCommit time.Time
	// pending holds the rows the last Read returned that the broker did
	// not confirm yet; once none is left, the position moves to
	// pendingEnd.
	pending       []relay.Row
	pendingEnd    pglogrepl.LSN
	pendingCommit time.Time
	confirmed     pglogrepl.LSN // the position confirmed to the server

	nextStatus, nextBeat time.Time
}

func newReader(src *Source, conn *pgconn.PgConn, lead relay.Lead, start pglogrepl.LSN) *reader {
	return &reader{src: src, conn: conn, lead: lead, relations: map[uint32]*relation{}, confirmed: start,
		nextBeat: time.Now().Add(src.cfg.heartbeat)}
}

// Read returns the rows not confirmed yet, or else the rows of the
// transactions the server sends next: it waits for the first one, for up
// to the status interval, then gathers those the server has sent already.
func (s *reader) Read(ctx context.Context) ([]relay.Row, error) {
	if len(s.pending) > 0 {
		return s.pending, s.tick(ctx)
	}
	for len(s.batch) < maxBatch {
		if err := s.tick(ctx); err != nil {
			return nil, err
		}
		deadline := s.nextStatus
		if s.nextBeat.Before(deadline) {
			deadline = s.nextBeat
		}
		if len(s.batch) > 0 {
			// Only what has arrived: the rows gathered wait for nothing.
			deadline = time.Now().Add(50 * time.Microsecond)
		}
		raw, err := s.receive(ctx, deadline)
		if err != nil {
			if pgconn.Timeout(err) && ctx.Err() == nil {
				if len(s.batch) > 0 {
					break
				}
				return nil, nil
			}
			return nil, fmt.Errorf("pgcdc: receiving from the log: %w", err)
		}
		switch m := raw.(type) {
		case *pgproto3.ErrorResponse:
			return nil, fmt.Errorf("pgcdc: replication: %w", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.CopyData:
			if err := s.copyData(m.Data); err != nil {
				return nil, err
			}
		}
	}
	s.pending, s.pendingEnd, s.pendingCommit = s.batch, s.batchEnd, s.batchCommit
	s.batch = nil
	return s.pending, nil
}

// receive reads the next message until deadline or ctx's end. The wait
// is the connection's read deadline, which a timeout leaves usable.
func (s *reader) receive(ctx context.Context, deadline time.Time) (pgproto3.BackendMessage, error) {
	if err := s.conn.Conn().SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { s.conn.Conn().SetReadDeadline(time.Now()) })
	defer stop()
	return s.conn.ReceiveMessage(context.Background())
}

// Confirm drops the rows the broker confirmed; once the last Read's rows
// are all confirmed, the position moves past their transactions (and is
// confirmed to the server at the next status update).
func (s *reader) Confirm(_ context.Context, done []bool) error {
	s.pending = relay.Unconfirmed(s.pending, done)
	if len(s.pending) == 0 {
		s.confirm(s.pendingEnd)
		if !s.pendingCommit.IsZero() {
			s.src.lastCommit.Store(s.pendingCommit.UnixMilli())
		}
	}
	return nil
}

func (s *reader) Close(ctx context.Context) error {
	return s.conn.Close(ctx)
}

// tick writes a heartbeat when it is due, reports the confirmed position
// to the server, and holds the stream while the lease's renewal is late.
//
// The lease is renewed beside the stream, on its own cadence of a quarter
// of its TTL, not the heartbeat's: renewed at each heartbeat, with the
// defaults (both 10s) it lapsed after 7.5s, the stream ended and
// restarted from the last position confirmed to the server, and every row
// published since was published again; renewed inline, a slow commit of
// the lease row held the stream back.
func (s *reader) tick(ctx context.Context) error {
	now := time.Now()
	if !now.Before(s.nextBeat) {
		s.nextBeat = now.Add(s.src.cfg.heartbeat)
		// A logical message in the log: its position can be confirmed
		// when it arrives, so the slot moves on even while the outbox
		// is idle and other tables fill the WAL.
		if _, err := s.src.db.ExecContext(ctx, "SELECT pg_logical_emit_message(false, $1, '')", heartbeatPrefix); err != nil && ctx.Err() == nil {
			s.src.logger.Warn("courier: log-tailing heartbeat failed", "error", err)
		}
	}
	// A late renewal holds the stream, publishing nothing, rather than
	// ending it: the server would send every row since the last
	// confirmed position again.
	if err := s.lead.Keeper.Await(ctx); err != nil {
		return err
	}
	if !now.Before(s.nextStatus) {
		s.nextStatus = now.Add(s.src.cfg.status)
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

func (s *reader) copyData(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		pkm, err := decode(data[1:], pglogrepl.ParsePrimaryKeepaliveMessage)
		if err != nil {
			return fmt.Errorf("pgcdc: keepalive: %w", err)
		}
		// Every transaction that committed before the server's end of
		// WAL has been sent: outside a transaction, the position can
		// move there once the rows before it are confirmed. Without
		// this the slot would hold the WAL of other tables until the
		// next heartbeat, and a server shutting down would wait for the
		// relay to confirm it (seconds, with every restart).
		if !s.inTx {
			s.passed(pkm.ServerWALEnd)
		}
		if pkm.ReplyRequested {
			s.nextStatus = time.Time{}
		}
	case pglogrepl.XLogDataByteID:
		xld, err := decode(data[1:], pglogrepl.ParseXLogData)
		if err != nil {
			return fmt.Errorf("pgcdc: log data: %w", err)
		}
		return s.logical(xld.WALData)
	}
	return nil
}

func (s *reader) logical(walData []byte) error {
	msg, err := decode(walData, pglogrepl.Parse)
	if err != nil {
		return fmt.Errorf("pgcdc: decoding the log: %w", err)
	}
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		rel, err := layout(m)
		if err == nil && s.src.cfg.eventuate != nil {
			rel, err = eventuateLayout(m, rel, s.src.cfg.eventuate)
		}
		if err != nil {
			return relay.Fatal(err)
		}
		s.relations[m.RelationID] = rel
	case *pglogrepl.BeginMessage:
		s.inTx, s.tx = true, s.tx[:0]
	case *pglogrepl.InsertMessage:
		rel := s.relations[m.RelationID]
		if rel == nil {
			return fmt.Errorf("pgcdc: insert into unknown relation %d", m.RelationID)
		}
		row, keep, err := rel.read(m.Tuple)
		if err != nil {
			return err
		}
		if keep {
			s.tx = append(s.tx, row)
		}
	case *pglogrepl.CommitMessage:
		s.inTx = false
		if len(s.tx) > 0 {
			for i := range s.tx {
				s.tx[i].Committed = m.CommitTime
			}
			s.batch = append(s.batch, s.tx...)
			s.batchCommit = m.CommitTime
		}
		s.tx = s.tx[:0]
		s.passed(m.TransactionEndLSN)
	case *pglogrepl.LogicalDecodingMessage:
		if m.Prefix == heartbeatPrefix && !s.inTx {
			s.passed(m.LSN)
		}
	}
	return nil
}

// decode runs parse, a decoder of pglogrepl, on data from the server,
// and returns a panic of the decoder (some panic on truncated messages)
// as an error instead of crashing the process.
func decode[T any](data []byte, parse func([]byte) (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("a message of %d bytes the decoder cannot read (it panicked: %v)", len(data), p)
		}
	}()
	return parse(data)
}

// passed notes that the stream passed lsn at a transaction boundary: the
// position can be confirmed there once the rows before it are.
func (s *reader) passed(lsn pglogrepl.LSN) {
	if len(s.batch) == 0 && len(s.pending) == 0 {
		s.confirm(lsn)
		return
	}
	s.batchEnd = max(s.batchEnd, lsn)
}

func (s *reader) confirm(lsn pglogrepl.LSN) {
	if lsn > s.confirmed {
		s.confirmed = lsn
		s.src.confirmed.Store(uint64(lsn))
	}
}

// layout finds the columns the source reads.
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

// row decodes an inserted tuple's columns, which pgoutput sends as text
// (bytea in hex: \x and two digits a byte).
func (rel *relation) row(t *pglogrepl.TupleData) (relay.Row, error) {
	text := func(i int) (string, error) { return column(t, i) }
	var row relay.Row
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
	if rel.eventuate == nil && len(payload) >= 2 && payload[0] == '\\' && payload[1] == 'x' {
		if row.Payload, err = hex.DecodeString(payload[2:]); err != nil {
			return row, fmt.Errorf("pgcdc: payload of %s: %w", row.ID, err)
		}
	} else {
		row.Payload = []byte(payload)
	}
	return row, nil
}

// column returns column i of an inserted tuple, which pgoutput sends as
// text ("" for NULL).
func column(t *pglogrepl.TupleData, i int) (string, error) {
	if t == nil || i >= len(t.Columns) {
		n := 0
		if t != nil {
			n = len(t.Columns)
		}
		return "", fmt.Errorf("pgcdc: insert with %d columns, column %d missing", n, i)
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
