package mysqlcdc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
	"github.com/go-mysql-org/go-mysql/server"
	"github.com/google/uuid"

	"github.com/courier-go/courier/broker/memory"
	"github.com/courier-go/courier/internal/relaytest"
	"github.com/courier-go/courier/internal/testdb"
	"github.com/courier-go/courier/outbox"
)

// No MySQL 8 server package is available here (CI runs MariaDB), so the
// tests of MySQL's GTID auto-positioning run against a source that serves
// a MySQL 8.0 binary log: the events a MySQL 8.0.36 server with
// gtid_mode = ON, binlog_row_metadata = FULL and CRC32 checksums writes
// for transactions that insert into the outbox table, in MySQL 8.0's
// event layout (FORMAT_DESCRIPTION with 8.0's post-header lengths,
// PREVIOUS_GTIDS, GTID with logical timestamps, commit timestamps,
// transaction length and server version, QUERY, TABLE_MAP with column
// names, WRITE_ROWS v2, XID), spoken over the replication protocol by
// go-mysql's server package. The relay's own database (lease, stored
// position, the outbox's columns) is the MariaDB of the other tests.

// mysql8SID is the source's server UUID.
var mysql8SID = uuid.MustParse("3e11fa47-71ca-11e1-9e33-c80aa9429562")

// mysql8PostHeaders are MySQL 8.0's post-header lengths of the event
// types, as its FORMAT_DESCRIPTION events list them.
var mysql8PostHeaders = []byte{0x38, 0xd, 0x0, 0x8, 0x0, 0x12, 0x0, 0x4, 0x4, 0x4, 0x4, 0x12, 0x0, 0x0, 0x5f, 0x0, 0x4, 0x1a,
	0x8, 0x0, 0x0, 0x0, 0x8, 0x8, 0x8, 0x2, 0x0, 0x0, 0x0, 0xa, 0xa, 0xa, 0x2a, 0x2a, 0x0, 0x12, 0x34, 0x0, 0xa, 0x28, 0x0}

// mysql8Tx is one transaction of the served log: its GTID's number and
// the events from its GTID event to its XID, checksummed.
type mysql8Tx struct {
	gno    int64
	events [][]byte
}

// mysql8Log is a MySQL 8.0 binary log file being written.
type mysql8Log struct {
	schema string
	pos    uint32 // offset of the next event in the file
	head   [][]byte
	txs    []mysql8Tx
}

func newMySQL8Log(schema string) *mysql8Log {
	l := &mysql8Log{schema: schema, pos: 4}
	fde := binary.LittleEndian.AppendUint16(nil, 4)
	version := make([]byte, 50)
	copy(version, "8.0.36")
	fde = append(fde, version...)
	fde = binary.LittleEndian.AppendUint32(fde, 0)
	fde = append(fde, 19)
	fde = append(fde, mysql8PostHeaders...)
	fde = append(fde, 1) // CRC32
	l.head = append(l.head, l.event(replication.FORMAT_DESCRIPTION_EVENT, fde))
	return l
}

// event appends an event of type typ with body at the end of the file.
func (l *mysql8Log) event(typ replication.EventType, body []byte) []byte {
	size := uint32(19 + len(body) + 4)
	ev := binary.LittleEndian.AppendUint32(nil, uint32(time.Now().Unix()))
	ev = append(ev, byte(typ))
	ev = binary.LittleEndian.AppendUint32(ev, 1)
	ev = binary.LittleEndian.AppendUint32(ev, size)
	l.pos += size
	ev = binary.LittleEndian.AppendUint32(ev, l.pos)
	ev = binary.LittleEndian.AppendUint16(ev, 0)
	ev = append(ev, body...)
	return binary.LittleEndian.AppendUint32(ev, crc32.ChecksumIEEE(ev))
}

// end is the file's end: the position after its last event.
func (l *mysql8Log) end() uint32 { return l.pos }

// commit appends transaction gno, which inserts one outbox row with id
// id into the schema's message table, or, if id is empty, a row into
// another table.
func (l *mysql8Log) commit(gno int64, id string) {
	tx := mysql8Tx{gno: gno}
	gtid := []byte{1}
	gtid = append(gtid, mysql8SID[:]...)
	gtid = binary.LittleEndian.AppendUint64(gtid, uint64(gno))
	gtid = append(gtid, 2) // logical timestamps
	gtid = binary.LittleEndian.AppendUint64(gtid, uint64(gno-1))
	gtid = binary.LittleEndian.AppendUint64(gtid, uint64(gno))
	commitTS := uint64(time.Now().UnixMicro())
	for i := range 7 { // immediate commit timestamp; the original is the same
		gtid = append(gtid, byte(commitTS>>(8*i)))
	}
	gtid = append(gtid, 200) // transaction length
	gtid = binary.LittleEndian.AppendUint32(gtid, 80036)
	tx.events = append(tx.events, l.event(replication.GTID_EVENT, gtid))

	begin := binary.LittleEndian.AppendUint32(nil, 42) // thread
	begin = binary.LittleEndian.AppendUint32(begin, 0)
	begin = append(begin, byte(len(l.schema)))
	begin = binary.LittleEndian.AppendUint16(begin, 0)
	begin = binary.LittleEndian.AppendUint16(begin, 0)
	begin = append(append(begin, l.schema...), 0)
	begin = append(begin, "BEGIN"...)
	tx.events = append(tx.events, l.event(replication.QUERY_EVENT, begin))

	table, names, row := "message", []string{"id", "destination", "headers", "payload", "published", "creation_time", "seq"}, [][]byte{
		lenString(2, id), lenString(2, "orders"), lenString(2, `{"PARTITION_ID":"k"}`), lenString(4, "payload of "+id),
		{0, 0}, binary.LittleEndian.AppendUint64(nil, 1), binary.LittleEndian.AppendUint64(nil, uint64(gno))}
	types, meta := []byte{mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_VARCHAR, mysql.MYSQL_TYPE_BLOB, mysql.MYSQL_TYPE_BLOB,
		mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_LONGLONG}, []byte{0xfc, 0x03, 0xfc, 0x03, 2, 4}
	if id == "" {
		table, names, row = "other", []string{"n"}, [][]byte{binary.LittleEndian.AppendUint64(nil, uint64(gno))}
		types, meta = []byte{mysql.MYSQL_TYPE_LONGLONG}, nil
	}
	const tableID = 108
	tm := binary.LittleEndian.AppendUint32(nil, tableID)
	tm = append(tm, 0, 0, 1, 0) // the table id's last 2 bytes, flags
	tm = append(append(append(tm, byte(len(l.schema))), l.schema...), 0)
	tm = append(append(append(tm, byte(len(table))), table...), 0)
	tm = append(tm, byte(len(types)))
	tm = append(tm, types...)
	tm = append(append(tm, byte(len(meta))), meta...)
	tm = append(tm, 0) // null bitmap: no column nullable
	var colNames []byte
	for _, n := range names {
		colNames = append(append(colNames, byte(len(n))), n...)
	}
	tm = append(append(append(tm, replication.TABLE_MAP_OPT_META_COLUMN_NAME), byte(len(colNames))), colNames...)
	tx.events = append(tx.events, l.event(replication.TABLE_MAP_EVENT, tm))

	rows := binary.LittleEndian.AppendUint32(nil, tableID)
	rows = append(rows, 0, 0, 1, 0) // the table id's last 2 bytes, flags: end of statement
	rows = binary.LittleEndian.AppendUint16(rows, 2)
	rows = append(rows, byte(len(types)), byte(1<<len(types)-1), 0)
	for _, v := range row {
		rows = append(rows, v...)
	}
	tx.events = append(tx.events, l.event(replication.WRITE_ROWS_EVENTv2, rows))
	tx.events = append(tx.events, l.event(replication.XID_EVENT, binary.LittleEndian.AppendUint64(nil, uint64(1000+gno))))
	l.txs = append(l.txs, tx)
}

// lenString is s with its length before it in n bytes.
func lenString(n int, s string) []byte {
	b := make([]byte, n, n+len(s))
	for i := range n {
		b[i] = byte(len(s) >> (8 * i))
	}
	return append(b, s...)
}

// mysql8Source serves a mysql8Log to replicas and records the GTID sets
// they ask to start after.
type mysql8Source struct {
	server.EmptyReplicationHandler
	log *mysql8Log

	mu        sync.Mutex
	requested []string
	streams   []*replication.BinlogStreamer
}

func (s *mysql8Source) HandleQuery(query string) (*mysql.Result, error) {
	if strings.Contains(strings.ToUpper(query), "BINLOG_CHECKSUM") {
		rs, err := mysql.BuildSimpleTextResultset([]string{"Variable_name", "Value"}, [][]any{{"binlog_checksum", "CRC32"}})
		return mysql.NewResult(rs), err
	}
	return nil, nil // SET, KILL
}

func (s *mysql8Source) HandleRegisterSlave([]byte) error { return nil }

func (s *mysql8Source) HandleBinlogDump(mysql.Position) (*replication.BinlogStreamer, error) {
	return nil, errors.New("this source serves GTID auto-positioning only")
}

// HandleBinlogDumpGTID streams what the replica has not executed: an
// artificial ROTATE, the file's FORMAT_DESCRIPTION and PREVIOUS_GTIDS,
// and the transactions whose GTIDs are not in set.
func (s *mysql8Source) HandleBinlogDumpGTID(set *mysql.MysqlGTIDSet) (*replication.BinlogStreamer, error) {
	st := replication.NewBinlogStreamer()
	s.mu.Lock()
	s.requested = append(s.requested, set.String())
	s.streams = append(s.streams, st)
	s.mu.Unlock()
	rotate := binary.LittleEndian.AppendUint64(nil, 4)
	rotate = append(rotate, "binlog.000001"...)
	// Without a checksum: the replica said it reads the first, fake,
	// ROTATE without one (@source_binlog_checksum = 'NONE').
	ev := binary.LittleEndian.AppendUint32(nil, 0)
	ev = append(ev, byte(replication.ROTATE_EVENT))
	ev = binary.LittleEndian.AppendUint32(ev, 1)
	ev = binary.LittleEndian.AppendUint32(ev, uint32(19+len(rotate)))
	ev = binary.LittleEndian.AppendUint32(ev, 0)
	ev = binary.LittleEndian.AppendUint16(ev, replication.LOG_EVENT_ARTIFICIAL_F)
	ev = append(ev, rotate...)
	events := append([][]byte{ev}, s.log.head...)
	for _, tx := range s.log.txs {
		have, err := mysql.ParseMysqlGTIDSet(fmt.Sprintf("%s:%d", mysql8SID, tx.gno))
		if err != nil {
			return nil, err
		}
		if !set.Contain(have) {
			events = append(events, tx.events...)
		}
	}
	for _, e := range events {
		if err := st.AddEventToStreamer(&replication.BinlogEvent{RawData: e}); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// serve accepts replicas on a local port until the test ends, and
// returns the address.
func (s *mysql8Source) serve(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, st := range s.streams {
			st.AddErrorToStreamer(errors.New("the test ended"))
		}
		s.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				conn, err := server.NewConn(c, "courier", "courier", s)
				if err != nil {
					return
				}
				for conn.HandleCommand() == nil {
				}
			})
		}
	})
	return ln.Addr().String()
}

func (s *mysql8Source) starts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requested...)
}

// A relay on MySQL 8 with gtid_mode = ON resumes by GTID
// auto-positioning from the executed set it stored: it asks the source
// for what follows the stored set, publishes exactly the outbox rows of
// those transactions, stores the set grown by every transaction it
// passed, other tables' included, and the next relay asks for what
// follows that.
func TestMySQL8GTIDAutoPositioning(t *testing.T) {
	db := testdb.MySQL(t)
	var schema string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	log := newMySQL8Log(schema)
	for gno := int64(1); gno <= 8; gno++ {
		log.commit(gno, fmt.Sprint("m-", gno))
	}
	log.commit(9, "") // another table
	source := &mysql8Source{log: log}
	addr := source.serve(t)

	b, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	got := relaytest.Collect(t, b, "orders")
	start := func() (*outbox.Relay, *Source, context.CancelFunc) {
		src, err := NewSource("courier:courier@tcp("+addr+")/"+schema, WithHeartbeat(time.Minute), WithStoreInterval(10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		src.flavorName = mysql.MySQLFlavor
		r, err := outbox.NewRelay(db.DB, db.Dialect, b, outbox.WithSource(src), outbox.WithLeaseTTL(time.Second),
			outbox.WithLogger(relaytest.Quiet()))
		if err != nil {
			t.Fatal(err)
		}
		return r, src, relaytest.Run(t, r)
	}

	// The relay last stored the set of transactions 1 to 5, at the end
	// of transaction 5 in binlog.000001.
	setup := &Source{db: db.DB}
	if err := setup.createPositionTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	stored := fmt.Sprintf("%s:1-5", mysql8SID)
	if _, err := db.Exec("INSERT INTO "+PositionTable+" (name, file, position, gtid, updated_at) VALUES ('outbox', 'binlog.000001', 1234, ?, 0)",
		stored); err != nil {
		t.Fatal(err)
	}
	_, src, stop := start()
	relaytest.Eventually(t, "the rows of transactions 6 to 8", func() bool { return got.Count() == 3 })
	want := fmt.Sprintf("%s:1-9", mysql8SID)
	relaytest.Eventually(t, "the set of transactions 1 to 9 stored", func() bool { return src.Stored().GTID == want })
	if p := src.Stored(); p.File != "binlog.000001" || p.Offset != log.end() {
		t.Fatalf("stored %v, want binlog.000001:%d", p, log.end())
	}
	stop()
	for i, m := range got.All() {
		if id := fmt.Sprint("m-", 6+i); m.ID != id || string(m.Payload) != "payload of "+id || m.PartitionKey() != "k" {
			t.Fatalf("message %d is %s %q %v, want %s", i, m.ID, m.Payload, m.Headers, id)
		}
	}

	// The next relay asks for what follows the stored set: nothing yet,
	// then transaction 10.
	log.commit(10, "m-10")
	start()
	relaytest.Eventually(t, "the row of transaction 10", func() bool { return got.Count() == 4 })
	time.Sleep(200 * time.Millisecond)
	if n := len(got.All()); n != 4 {
		t.Fatalf("%d deliveries of 4 messages: a transaction before the stored set was published again", n)
	}
	if starts := source.starts(); len(starts) != 2 || starts[0] != stored || starts[1] != want {
		t.Fatalf("the relays asked to start after %q, want %q then %q", starts, stored, want)
	}
}
