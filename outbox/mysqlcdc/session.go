package mysqlcdc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/sqldb"
)

// events is where a session reads the log from: a go-mysql
// BinlogStreamer, or the events a test parsed.
type events interface {
	GetEvent(ctx context.Context) (*replication.BinlogEvent, error)
}

// session is one replication connection's stream.
type session struct {
	r      *Relay
	st     events
	layout *layout

	file string   // the file the stream is in
	pos  Position // just after the last committed transaction
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
	tx     []outbox.Row

	streamed bool
}

func newSession(r *Relay, st events, l *layout, start Position, gtids gomysql.GTIDSet) *session {
	return &session{r: r, st: st, layout: l, file: start.File, pos: start, gtids: gtids, outbox: map[uint64]bool{}}
}

func (s *session) run(ctx context.Context) (bool, error) {
	defer func() {
		// Keep what was published: store the position on the way out.
		if s.dirty && s.r.valid() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := s.store(sctx); err != nil && !errors.Is(err, sqldb.ErrLeaseLost) {
				s.r.fail(err)
			}
		}
	}()
	for {
		if err := s.tick(ctx); err != nil {
			return s.streamed, err
		}
		// The lease is renewed beside the stream (Relay.keeper); tick
		// looks at it every quarter of its TTL.
		wait := s.r.lease.TTL() / 4
		if s.dirty {
			wait = min(wait, time.Until(s.storeAt))
		}
		nctx, cancel := context.WithTimeout(ctx, max(wait, time.Millisecond))
		ev, err := s.st.GetEvent(nctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				continue
			}
			return s.streamed, fmt.Errorf("mysqlcdc: reading the binary log: %w", err)
		}
		s.streamed = true
		if err := s.event(ctx, ev); err != nil {
			return true, err
		}
	}
}

// tick ends the session when the lease is no longer certainly held, and
// stores the position when it is due. A late renewal holds the stream,
// publishing nothing, rather than ending it: the next stream would start
// from the stored position and publish the rows since again.
func (s *session) tick(ctx context.Context) error {
	if err := s.r.keeper.Await(ctx); err != nil {
		return err
	}
	if s.dirty && !time.Now().Before(s.storeAt) {
		return s.store(ctx)
	}
	return nil
}

// store writes the position, fenced by the lease.
func (s *session) store(ctx context.Context) error {
	fence, args := s.r.lease.Fence()
	res, err := s.r.db.ExecContext(ctx, "UPDATE "+PositionTable+" SET file = ?, position = ?, gtid = ?, updated_at = ?, beats = beats + 1"+
		" WHERE name = ? AND "+fence, append([]any{s.pos.File, s.pos.Offset, s.pos.GTID, time.Now().UnixMilli(), s.r.cfg.name}, args...)...)
	if err != nil {
		// Retried at the next tick; a crash meanwhile replays.
		s.r.fail(fmt.Errorf("mysqlcdc: storing the position: %w", err))
		s.storeAt = time.Now().Add(s.r.cfg.store)
		return nil
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return sqldb.ErrLeaseLost
	}
	s.dirty = false
	s.r.setStored(s.pos)
	return nil
}

func (s *session) event(ctx context.Context, ev *replication.BinlogEvent) error {
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
			return s.commit(ctx, ev.Header)
		case q == "ROLLBACK":
			s.begin()
			s.inTx, s.txGTID = false, nil
		default:
			// DDL: table ids change; an ALTER of the outbox shows in
			// its next TABLE_MAP.
			clear(s.outbox)
			if s.standalone || !s.inTx {
				return s.commit(ctx, ev.Header)
			}
		}
	case *replication.TableMapEvent:
		if string(e.Schema) != s.r.dsn.DBName || string(e.Table) != "message" {
			delete(s.outbox, e.TableID)
			return nil
		}
		if err := s.checkTable(ctx, e); err != nil {
			return err
		}
		s.outbox[e.TableID] = true
	case *replication.RowsEvent:
		if e.Type() != replication.EnumRowsEventTypeInsert || !s.outbox[e.TableID] {
			return nil
		}
		for _, values := range e.Rows {
			row, err := s.layout.row(values)
			if err != nil {
				return err
			}
			s.tx = append(s.tx, row)
		}
	case *replication.XIDEvent:
		return s.commit(ctx, ev.Header)
	case *replication.TransactionPayloadEvent:
		// A compressed transaction (binlog_transaction_compression):
		// its events, in order.
		for _, inner := range e.Events {
			if err := s.event(ctx, inner); err != nil {
				return err
			}
		}
	}
	return nil
}

// addMySQLGTID returns what adds a MySQL GTID to the executed set at
// the transaction's commit.
func (s *session) addMySQLGTID(sid []byte, tag gomysql.Tag, gno int64) func() error {
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

func (s *session) begin() {
	s.inTx, s.standalone, s.txGTID, s.tx = true, false, nil, s.tx[:0]
}

// checkTable verifies a TABLE_MAP of the outbox against the layout, and
// reads the layout again if the table changed.
func (s *session) checkTable(ctx context.Context, tm *replication.TableMapEvent) error {
	for attempt := 0; ; attempt++ {
		err := s.layout.check(tm)
		if err == nil || attempt > 0 {
			return err
		}
		l, lerr := s.r.layout(ctx)
		if lerr != nil {
			return lerr
		}
		s.layout = l
	}
}

// commit publishes the transaction's rows and moves the position past it.
func (s *session) commit(ctx context.Context, h *replication.EventHeader) error {
	if len(s.tx) > 0 {
		if err := s.publish(ctx, s.tx); err != nil {
			return err
		}
		s.r.lastCommit.Store(int64(h.Timestamp) * 1000)
	}
	if s.txGTID != nil {
		if err := s.txGTID(); err != nil {
			return err
		}
	}
	s.inTx, s.standalone, s.txGTID, s.tx = false, false, nil, s.tx[:0]
	if h.LogPos == 0 || h.Flags&replication.LOG_EVENT_ARTIFICIAL_F != 0 {
		return nil
	}
	s.pos = Position{File: s.file, Offset: h.LogPos}
	if s.gtids != nil {
		s.pos.GTID = s.gtids.String()
	}
	if !s.dirty {
		s.dirty, s.storeAt = true, time.Now().Add(s.r.cfg.store)
	}
	return nil
}

// publish publishes one transaction's rows until the broker confirmed all
// of them, the lease is lost or ctx ends.
func (s *session) publish(ctx context.Context, rows []outbox.Row) error {
	for attempt := 0; len(rows) > 0; attempt++ {
		if attempt > 0 {
			backoff := time.NewTimer(min(50*time.Millisecond<<min(attempt-1, 6), 2*time.Second))
			select {
			case <-ctx.Done():
				backoff.Stop()
				return ctx.Err()
			case <-backoff.C:
			}
			if err := s.tick(ctx); err != nil {
				return err
			}
		}
		res := s.r.rows.Publish(ctx, rows)
		if res.Err != nil {
			s.r.fail(res.Err)
		}
		done := map[string]bool{}
		for _, id := range res.Done {
			done[id] = true
		}
		rows = slices.DeleteFunc(slices.Clone(rows), func(r outbox.Row) bool { return done[r.ID] })
		if len(rows) > 0 && !s.r.valid() {
			return sqldb.ErrLeaseLost
		}
	}
	return nil
}
