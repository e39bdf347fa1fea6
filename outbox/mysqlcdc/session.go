package mysqlcdc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/courier-go/courier/outbox"
	"github.com/courier-go/courier/outbox/mysqlcdc/binlog"
	"github.com/courier-go/courier/sqldb"
)

// session is one replication connection's stream.
type session struct {
	r      *Relay
	st     *binlog.Stream
	parser *binlog.Parser
	layout *layout

	file    string            // the file the stream is in
	pos     Position          // just after the last committed transaction
	gtids   map[uint32]string // MariaDB: last GTID of each domain
	outbox  map[uint64]bool   // table ids of the outbox table
	dirty   bool              // pos is not stored yet
	storeAt time.Time

	inTx, standalone bool
	txGTID           *binlog.GTID
	tx               []outbox.Row

	streamed bool
}

func newSession(r *Relay, st *binlog.Stream, l *layout, start Position) *session {
	s := &session{r: r, st: st, parser: binlog.NewParser(), layout: l, file: start.File, pos: start,
		gtids: map[uint32]string{}, outbox: map[uint64]bool{}}
	for _, g := range strings.Split(start.GTID, ",") {
		if d, _, ok := strings.Cut(strings.TrimSpace(g), "-"); ok {
			if n, err := strconv.ParseUint(d, 10, 32); err == nil {
				s.gtids[uint32(n)] = strings.TrimSpace(g)
			}
		}
	}
	return s
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
		raw, err := s.st.Next(nctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				continue
			}
			return s.streamed, fmt.Errorf("mysqlcdc: reading the binary log: %w", err)
		}
		s.streamed = true
		ev, err := s.parser.Parse(raw)
		if err != nil {
			return true, err
		}
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

func (s *session) event(ctx context.Context, ev *binlog.Event) error {
	switch b := ev.Body.(type) {
	case *binlog.Rotate:
		s.file = b.NextFile
	case *binlog.GTID:
		s.begin()
		g := *b
		s.txGTID, s.standalone = &g, b.Standalone()
	case *binlog.Query:
		switch q := strings.ToUpper(strings.TrimSpace(b.Query)); {
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
	case *binlog.TableMap:
		if b.Schema != s.r.dsn.DBName || b.Table != "message" {
			delete(s.outbox, b.TableID)
			return nil
		}
		if err := s.checkTable(ctx, b); err != nil {
			return err
		}
		s.outbox[b.TableID] = true
	case *binlog.Rows:
		if b.Kind != binlog.RowsInsert || !s.outbox[b.TableID] {
			return nil
		}
		for _, row := range b.Rows {
			s.tx = append(s.tx, s.layout.row(row))
		}
	case *binlog.XID:
		return s.commit(ctx, ev.Header)
	}
	return nil
}

func (s *session) begin() {
	s.inTx, s.standalone, s.txGTID, s.tx = true, false, nil, s.tx[:0]
}

// checkTable verifies a TABLE_MAP of the outbox against the layout, and
// reads the layout again if the table changed.
func (s *session) checkTable(ctx context.Context, tm *binlog.TableMap) error {
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

func (l *layout) check(tm *binlog.TableMap) error {
	if len(tm.Types) != l.columns {
		return fmt.Errorf("%w: the binary log has %d columns for %s.message, information_schema %d", ErrColumnLayout, len(tm.Types), tm.Schema, l.columns)
	}
	for name, i := range map[string]int{"id": l.id, "destination": l.destination, "headers": l.headers, "payload": l.payload} {
		if !tm.Types[i].IsString() {
			return fmt.Errorf("%w: column %s of %s.message is logged as %v, not as a string", ErrColumnLayout, name, tm.Schema, tm.Types[i])
		}
		if tm.Names != nil && !strings.EqualFold(tm.Names[i], name) {
			return fmt.Errorf("%w: column %d of %s.message is %s in the binary log, %s in information_schema", ErrColumnLayout, i+1, tm.Schema, tm.Names[i], name)
		}
	}
	return nil
}

// row picks the relay's columns out of a decoded row; check made sure
// they are strings.
func (l *layout) row(values []any) outbox.Row {
	text := func(i int) []byte {
		b, _ := values[i].([]byte)
		return b
	}
	return outbox.Row{ID: string(text(l.id)), Destination: string(text(l.destination)), Headers: string(text(l.headers)),
		Payload: slices.Clone(text(l.payload))}
}

// commit publishes the transaction's rows and moves the position past it.
func (s *session) commit(ctx context.Context, h binlog.Header) error {
	if len(s.tx) > 0 {
		if err := s.publish(ctx, s.tx); err != nil {
			return err
		}
		s.r.lastCommit.Store(int64(h.Timestamp) * 1000)
	}
	if s.txGTID != nil && s.txGTID.MariaDB {
		s.gtids[s.txGTID.Domain] = s.txGTID.String()
	}
	s.inTx, s.standalone, s.txGTID, s.tx = false, false, nil, s.tx[:0]
	if h.LogPos == 0 || h.Flags&binlog.FlagArtificial != 0 {
		return nil
	}
	s.pos = Position{File: s.file, Offset: h.LogPos, GTID: s.gtidPosition()}
	if !s.dirty {
		s.dirty, s.storeAt = true, time.Now().Add(s.r.cfg.store)
	}
	return nil
}

func (s *session) gtidPosition() string {
	domains := make([]uint32, 0, len(s.gtids))
	for d := range s.gtids {
		domains = append(domains, d)
	}
	slices.Sort(domains)
	parts := make([]string, len(domains))
	for i, d := range domains {
		parts[i] = s.gtids[d]
	}
	return strings.Join(parts, ",")
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
