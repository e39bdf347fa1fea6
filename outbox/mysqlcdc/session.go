package mysqlcdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/courier-go/courier/outbox/internal/relay"
	"github.com/courier-go/courier/sqldb"
)

// events is where a session reads the log from: a go-mysql
// BinlogStreamer, or the events a test parsed.
type events interface {
	GetEvent(ctx context.Context) (*replication.BinlogEvent, error)
}

// maxBatch is how many rows of committed transactions a Read gathers
// from what the server has already sent before it returns them.
const maxBatch = 1000

// reader is one replication connection's stream.
type reader struct {
	src    *Source
	st     events
	lead   relay.Lead
	layout *layout
	close  func() // ends the replication connection

	file string   // the file the stream is in
	pos  Position // just after the last transaction confirmed
	// gtids is the GTID position after the last committed transaction
	// (MariaDB: the last GTID of each domain; MySQL: the executed set),
	// nil while the relay positions by file and offset.
	gtids   gomysql.GTIDSet
	outbox  map[uint64]bool // table ids of the outbox table
	dirty   bool            // pos is not stored yet
	storeAt time.Time

	inTx, standalone bool
	// txGTID adds the transaction's GTID to gtids at its commit.
	txGTID func() error
	tx     []relay.Row
	// batch holds the rows of the transactions received, in commit
	// order; batchPos is the position after the last of them and
	// batchCommit its commit time.
	batch       []relay.Row
	batchPos    *Position
	batchCommit time.Time
	// pending holds the rows the last Read returned that the broker did
	// not confirm yet; once none is left, the position moves to
	// pendingPos.
	pending       []relay.Row
	pendingPos    *Position
	pendingCommit time.Time
}

func newReader(src *Source, st events, lead relay.Lead, l *layout, start Position, gtids gomysql.GTIDSet) *reader {
	return &reader{src: src, st: st, lead: lead, layout: l, file: start.File, pos: start, gtids: gtids, outbox: map[uint64]bool{},
		close: func() {}}
}

// Read returns the rows not confirmed yet, or else the rows of the
// transactions the server sends next: it waits for the first one, for up
// to a quarter of the lease's TTL (or until the position is due to be
// stored), then gathers those already received.
func (s *reader) Read(ctx context.Context) ([]relay.Row, error) {
	if len(s.pending) > 0 {
		return s.pending, s.tick(ctx)
	}
	for len(s.batch) < maxBatch {
		if err := s.tick(ctx); err != nil {
			return nil, err
		}
		wait := s.lead.Lease.TTL() / 4
		if s.dirty {
			wait = min(wait, time.Until(s.storeAt))
		}
		if len(s.batch) > 0 {
			wait = 0 // only what has arrived: the rows gathered wait for nothing
		}
		nctx, cancel := context.WithTimeout(ctx, max(wait, 50*time.Microsecond))
		ev, err := s.st.GetEvent(nctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				if len(s.batch) > 0 {
					break
				}
				return nil, nil
			}
			return nil, fmt.Errorf("mysqlcdc: reading the binary log: %w", err)
		}
		if err := s.event(ev); err != nil {
			return nil, err
		}
	}
	s.pending, s.pendingPos, s.pendingCommit = s.batch, s.batchPos, s.batchCommit
	s.batch, s.batchPos = nil, nil
	return s.pending, nil
}

// Confirm drops the rows the broker confirmed; once the last Read's rows
// are all confirmed, the position moves past their transactions (and is
// stored within the store interval).
func (s *reader) Confirm(_ context.Context, done []bool) error {
	s.pending = relay.Unconfirmed(s.pending, done)
	if len(s.pending) == 0 && s.pendingPos != nil {
		s.advance(*s.pendingPos)
		s.pendingPos = nil
		s.src.lastCommit.Store(s.pendingCommit.UnixMilli())
	}
	return nil
}

// Close stores the position if it moved and the lease still holds, and
// ends the replication connection.
func (s *reader) Close(ctx context.Context) error {
	defer s.close()
	if s.dirty && s.lead.Keeper.Valid() {
		return s.store(ctx)
	}
	return nil
}

// tick holds the stream while the lease's renewal is late, and stores the
// position when it is due. A late renewal holds the stream, publishing
// nothing, rather than ending it: the next stream would start from the
// stored position and publish the rows since again.
func (s *reader) tick(ctx context.Context) error {
	if err := s.lead.Keeper.Await(ctx); err != nil {
		return err
	}
	if s.dirty && !time.Now().Before(s.storeAt) {
		return s.store(ctx)
	}
	return nil
}

// store writes the position, fenced by the lease.
func (s *reader) store(ctx context.Context) error {
	fence, args := s.lead.Lease.Fence()
	res, err := s.src.db.ExecContext(ctx, "UPDATE "+PositionTable+" SET file = ?, position = ?, gtid = ?, updated_at = ?, beats = beats + 1"+
		" WHERE name = ? AND "+fence, append([]any{s.pos.File, s.pos.Offset, s.pos.GTID, time.Now().UnixMilli(), s.src.name}, args...)...)
	if err != nil {
		// Retried at the next tick; a crash meanwhile replays.
		s.storeAt = time.Now().Add(s.src.cfg.store)
		if ctx.Err() == nil {
			s.src.logger.Warn("courier: storing the binary log position failed", slog.Any("error", err))
		}
		return nil
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("mysqlcdc: storing the position: %w", sqldb.ErrLeaseLost)
	}
	s.dirty = false
	s.src.setStored(s.pos)
	return nil
}

// advance moves the confirmed position to p.
func (s *reader) advance(p Position) {
	s.pos = p
	if !s.dirty {
		s.dirty, s.storeAt = true, time.Now().Add(s.src.cfg.store)
	}
}

func (s *reader) event(ev *replication.BinlogEvent) error {
	switch e := ev.Event.(type) {
	case *replication.RotateEvent:
		s.file = string(e.NextLogName)
	case *replication.GTIDEvent:
		s.begin()
		if ev.Header.EventType == replication.GTID_EVENT {
			s.txGTID = s.addMySQLGTID(e.SID, gomysql.Tag{}, e.GNO)
		}
	case *replication.GtidTaggedLogEvent:
		s.begin()
		s.txGTID = s.addMySQLGTID(e.SID, e.Tag, e.GNO)
	case *replication.MariadbGTIDEvent:
		s.begin()
		g := e.GTID
		s.standalone = e.IsStandalone()
		s.txGTID = func() error {
			if set, ok := s.gtids.(*gomysql.MariadbGTIDSet); ok {
				return set.AddSet(&g)
			}
			return nil
		}
	case *replication.QueryEvent:
		switch q := strings.ToUpper(strings.TrimSpace(string(e.Query))); {
		case q == "BEGIN":
			s.inTx, s.tx = true, s.tx[:0]
		case q == "COMMIT":
			return s.commit(ev.Header)
		case q == "ROLLBACK":
			s.begin()
			s.inTx, s.txGTID = false, nil
		default:
			// DDL: table ids change; an ALTER of the outbox shows in
			// its next TABLE_MAP.
			clear(s.outbox)
			if s.standalone || !s.inTx {
				return s.commit(ev.Header)
			}
		}
	case *replication.TableMapEvent:
		if string(e.Schema) != s.src.outboxSchema() || string(e.Table) != "message" {
			delete(s.outbox, e.TableID)
			return nil
		}
		if err := s.checkTable(e); err != nil {
			return err
		}
		s.outbox[e.TableID] = true
	case *replication.RowsEvent:
		if e.Type() != replication.EnumRowsEventTypeInsert || !s.outbox[e.TableID] {
			return nil
		}
		for _, values := range e.Rows {
			row, keep, err := s.layout.read(values)
			if err != nil {
				return relay.Fatal(err)
			}
			if keep {
				s.tx = append(s.tx, row)
			}
		}
	case *replication.XIDEvent:
		return s.commit(ev.Header)
	case *replication.TransactionPayloadEvent:
		// A compressed transaction (binlog_transaction_compression):
		// its events, in order.
		for _, inner := range e.Events {
			if err := s.event(inner); err != nil {
				return err
			}
		}
	}
	return nil
}

// addMySQLGTID returns what adds a MySQL GTID to the executed set at
// the transaction's commit.
func (s *reader) addMySQLGTID(sid []byte, tag gomysql.Tag, gno int64) func() error {
	return func() error {
		set, ok := s.gtids.(*gomysql.MysqlGTIDSet)
		if !ok {
			return nil
		}
		u, err := uuid.FromBytes(sid)
		if err != nil {
			return fmt.Errorf("mysqlcdc: GTID event: %w", err)
		}
		set.AddGTIDWithTag(u, tag, gno)
		return nil
	}
}

func (s *reader) begin() {
	s.inTx, s.standalone, s.txGTID, s.tx = true, false, nil, s.tx[:0]
}

// checkTable verifies a TABLE_MAP of the outbox against the layout, and
// reads the layout again if the table changed.
func (s *reader) checkTable(tm *replication.TableMapEvent) error {
	for attempt := 0; ; attempt++ {
		err := s.layout.check(tm)
		if err == nil || attempt > 0 {
			return relay.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		l, lerr := s.src.layout(ctx)
		cancel()
		if lerr != nil {
			return lerr
		}
		s.layout = l
	}
}

// commit ends a transaction: its rows join the batch, and the position
// past it is confirmed with them, or at once if no row waits.
func (s *reader) commit(h *replication.EventHeader) error {
	if s.txGTID != nil {
		if err := s.txGTID(); err != nil {
			return err
		}
	}
	rows := len(s.tx) > 0
	if rows {
		committed := time.Unix(int64(h.Timestamp), 0)
		for i := range s.tx {
			s.tx[i].Committed = committed
		}
		s.batch = append(s.batch, s.tx...)
		s.batchCommit = committed
	}
	s.inTx, s.standalone, s.txGTID, s.tx = false, false, nil, s.tx[:0]
	if h.LogPos == 0 || h.Flags&replication.LOG_EVENT_ARTIFICIAL_F != 0 {
		return nil
	}
	p := Position{File: s.file, Offset: h.LogPos}
	if s.gtids != nil {
		p.GTID = s.gtids.String()
	}
	if len(s.batch) == 0 && len(s.pending) == 0 {
		s.advance(p)
		return nil
	}
	s.batchPos = &p
	return nil
}
