package mysqlcdc

import (
	"database/sql"
	"fmt"
	"log/slog"
	"testing"

	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite"

	"github.com/courier-go/courier/outbox/internal/relay"
)

// FuzzBinlogEvents feeds the path from the bytes of the binary log to
// Courier's rows: a MySQL 8.0 log (FORMAT_DESCRIPTION, then a transaction
// inserting an outbox row: GTID, BEGIN, TABLE_MAP, WRITE_ROWS, XID) with
// one event replaced by bytes of any content, parsed by go-mysql's parser
// as its replication client parses what the server sends (with Courier's
// decoder of rows events), and handed to the reader. A panic of go-mysql's
// parser ends the stream with an error (its client recovers it); the
// reader must take each event it is given or return an error, never
// panic, and gather only rows the log held; nothing may run out of
// memory.
//
//	go test -fuzz FuzzBinlogEvents ./outbox/mysqlcdc/
func FuzzBinlogEvents(f *testing.F) {
	l := newMySQL8Log("db")
	l.commit(1, "0000000000000001-0000000000000001")
	for i, ev := range l.txs[0].events {
		f.Add(uint8(i), ev)
		f.Add(uint8(i), ev[:len(ev)/2])
	}
	f.Add(uint8(9), []byte{})
	// The reader reads the table's layout again when a TABLE_MAP does not
	// match it; from a database without one, that fails.
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	f.Fuzz(func(t *testing.T, at uint8, data []byte) {
		p := replication.NewBinlogParser()
		p.SetRowsEventDecodeFunc(decodeRows("db"))
		if _, err := p.Parse(l.head[0]); err != nil {
			t.Fatal(err)
		}
		gtids, err := gomysql.ParseMysqlGTIDSet("")
		if err != nil {
			t.Fatal(err)
		}
		src := &Source{dsn: &mysql.Config{DBName: "db"}, db: db}
		s := newReader(src, nil, relay.Lead{}, &layout{columns: 7, id: 0, destination: 1, headers: 2, payload: 3}, Position{File: "binlog.000001", Offset: 4},
			gtids)
		events := append([][]byte{}, l.txs[0].events...)
		events[int(at)%len(events)] = data
		for _, raw := range events {
			ev, err := parse(p, raw)
			if err != nil {
				return
			}
			if err := s.event(ev); err != nil {
				return
			}
		}
		for _, r := range append(s.tx, s.batch...) {
			if len(r.ID) > len(data) && r.ID != "0000000000000001-0000000000000001" {
				t.Fatalf("row id %q is in no event", r.ID)
			}
		}
	})
}

// parse parses a raw event as go-mysql's replication client does, which
// turns a panic of the parser into the stream's error.
func parse(p *replication.BinlogParser, raw []byte) (ev *replication.BinlogEvent, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parser panicked: %v", r)
		}
	}()
	return p.Parse(raw)
}

// The replication client decodes rows events with decodeRows, which
// FuzzBinlogEvents checks, not with go-mysql's decoder.
func TestSyncerDecodesRowsWithTheGuard(t *testing.T) {
	s := &Source{dsn: &mysql.Config{DBName: "db"}, logger: slog.Default()}
	if s.syncerConfig("mysql").RowsEventDecodeFunc == nil {
		t.Fatal("the replication client decodes rows events with go-mysql's own decoder")
	}
}
