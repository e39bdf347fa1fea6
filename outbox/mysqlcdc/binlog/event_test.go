package binlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// fixtures returns the events captured from MariaDB 10.11 (see
// TestLiveStream), in stream order.
func fixtures(t *testing.T) [][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/mariadb-*.bin")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	sort.Strings(files)
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestParseCapturedMariaDBStream(t *testing.T) {
	p := NewParser()
	var got []EventType
	var rows *Rows
	for _, raw := range fixtures(t) {
		ev, err := p.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev.Header.Type)
		switch b := ev.Body.(type) {
		case *Rotate:
			if b.NextFile != "mysql-bin.000003" || ev.Header.Flags&FlagArtificial == 0 {
				t.Fatalf("rotate = %+v, flags %x", b, ev.Header.Flags)
			}
		case *FormatDescription:
			if b.ChecksumAlgorithm != ChecksumCRC32 || !strings.Contains(b.ServerVersion, "MariaDB") {
				t.Fatalf("format = %+v", b)
			}
		case *GTID:
			if !b.MariaDB || b.Domain != 0 || b.ServerID != 1 || b.Sequence == 0 || !strings.HasPrefix(b.String(), "0-1-") {
				t.Fatalf("gtid = %+v", b)
			}
		case *Query:
			if !strings.HasPrefix(b.Query, "CREATE TABLE kinds") || !strings.HasPrefix(b.Schema, "t_") {
				t.Fatalf("query = %+v", b)
			}
		case *TableMap:
			if b.Table != "kinds" || len(b.Types) != 22 || b.Types[10] != TypeVarchar || b.Meta[10] != 1200 {
				t.Fatalf("table map = %+v", b)
			}
		case *Rows:
			rows = b
		case *XID:
			if b.XID == 0 {
				t.Fatal("xid 0")
			}
		case *Heartbeat:
			if b.LogFile != "mysql-bin.000003" || ev.Header.LogPos == 0 {
				t.Fatalf("heartbeat = %+v at %d", b, ev.Header.LogPos)
			}
		}
	}
	want := []EventType{RotateEvent, FormatDescriptionEvent, MariaGTIDEvent, QueryEvent, MariaGTIDEvent, TableMapEvent,
		WriteRowsEventV1, XIDEvent, HeartbeatEvent}
	if !equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	if rows == nil || rows.Kind != RowsInsert || len(rows.Rows) != 1 {
		t.Fatalf("rows = %+v", rows)
	}
	r := rows.Rows[0]
	ints := map[int]int64{0: 1, 1: -5, 2: -300, 3: -70000, 4: -2000000000, 17: 2024, 19: 2, 20: 3}
	for i, v := range ints {
		if r[i] != v {
			t.Errorf("column %d = %#v, want %d", i, r[i], v)
		}
	}
	// INT UNSIGNED 4000000000 comes back as the signed 32-bit value.
	if r[5] != int64(int32(-294967296)) || uint32(r[5].(int64)) != 4000000000 {
		t.Errorf("unsigned column = %#v", r[5])
	}
	if r[6] != float32(1.5) || r[7] != 2.25 {
		t.Errorf("floats = %#v %#v", r[6], r[7])
	}
	if string(r[9].([]byte)) != "ab" || len(r[10].([]byte)) != 280 || string(r[11].([]byte)) != "text" ||
		!bytes.Equal(r[12].([]byte), []byte{0, 1, 255}) {
		t.Errorf("strings = %q %d %q %q", r[9], len(r[10].([]byte)), r[11], r[12])
	}
	if _, ok := r[8].(RawValue); !ok || len(r[8].(RawValue)) != 6 {
		t.Errorf("decimal(10,3) = %#v, want 6 raw bytes", r[8])
	}
	if r[21] != nil {
		t.Errorf("NULL column = %#v", r[21])
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseRejectsCorruptEvents(t *testing.T) {
	evs := fixtures(t)
	p := NewParser()
	for _, raw := range evs[:2] {
		if _, err := p.Parse(raw); err != nil {
			t.Fatal(err)
		}
	}
	bad := bytes.Clone(evs[6]) // WRITE_ROWS
	bad[30] ^= 0xff
	if _, err := p.Parse(bad); !errors.Is(err, ErrChecksum) {
		t.Fatalf("corrupt event: %v", err)
	}
	if _, err := p.Parse(evs[6][:10]); err == nil {
		t.Fatal("a truncated header was accepted")
	}
	// A row event whose TABLE_MAP never came.
	if _, err := p.Parse(evs[6]); err == nil || !strings.Contains(err.Error(), "without a TABLE_MAP") {
		t.Fatalf("rows without table map: %v", err)
	}
	// Truncated bodies (checksums recomputed) fail with an error, never a panic.
	for _, raw := range evs[2:] {
		for cut := HeaderSize; cut < len(raw)-4; cut += 3 {
			short := withCRC(raw[:cut], raw[4])
			q := NewParser()
			q.Parse(evs[1])
			q.Parse(evs[5])
			q.Parse(short) // must not panic
		}
	}
}

// withCRC rebuilds an event from a prefix of its header and body.
func withCRC(prefix []byte, _ byte) []byte {
	b := bytes.Clone(prefix)
	binary.LittleEndian.PutUint32(b[9:], uint32(len(b)+4))
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// event builds an event of type t with body, without a checksum.
func event(t EventType, body []byte) []byte {
	b := make([]byte, HeaderSize, HeaderSize+len(body))
	b[4] = byte(t)
	binary.LittleEndian.PutUint32(b[9:], uint32(HeaderSize+len(body)))
	binary.LittleEndian.PutUint32(b[13:], 1234)
	return append(b, body...)
}

// mysqlFormat is a MySQL 8 FORMAT_DESCRIPTION without checksums.
func mysqlFormat() []byte {
	body := binary.LittleEndian.AppendUint16(nil, 4)
	body = append(body, make([]byte, 50)...)
	copy(body[2:], "8.0.36")
	body = append(body, 0, 0, 0, 0, HeaderSize)
	post := make([]byte, 41)
	post[TableMapEvent-1], post[WriteRowsEventV2-1], post[QueryEvent-1] = 8, 10, 13
	body = append(body, post...)
	body = append(body, ChecksumOff, 0, 0, 0, 0)
	return event(FormatDescriptionEvent, body)
}

func TestParseMySQLRowsV2AndGTID(t *testing.T) {
	p := NewParser()
	if _, err := p.Parse(mysqlFormat()); err != nil {
		t.Fatal(err)
	}
	// TABLE_MAP of db.message (id VARCHAR(255) utf8mb4, n BIGINT, p LONGBLOB),
	// with column names in the optional metadata.
	tm := []byte{7, 0, 0, 0, 0, 0, 1, 0, 2, 'd', 'b', 0, 7, 'm', 'e', 's', 's', 'a', 'g', 'e', 0, 3,
		byte(TypeVarchar), byte(TypeLongLong), byte(TypeBlob), 3, 0xfc, 0x03, 4, 0b100}
	names := []byte{2, 'i', 'd', 1, 'n', 1, 'p'}
	tm = append(append(tm, 4, byte(len(names))), names...)
	ev, err := p.Parse(event(TableMapEvent, tm))
	if err != nil {
		t.Fatal(err)
	}
	if m := ev.Body.(*TableMap); !equal(m.Names, []string{"id", "n", "p"}) || m.Meta[0] != 1020 || m.Meta[2] != 4 || !m.Nullable[2] {
		t.Fatalf("table map = %+v", m)
	}
	// WRITE_ROWS v2 with 2 bytes of extra data, two rows, NULL in the second.
	rows := []byte{7, 0, 0, 0, 0, 0, 1, 0, 4, 0, 0xaa, 0xbb, 3, 0b111}
	rows = append(rows, 0, 2, 0, 'a', 'b')                     // id "ab" (2-byte length: meta > 255)
	rows = binary.LittleEndian.AppendUint64(rows, ^uint64(41)) // n = -42
	rows = append(rows, 3, 0, 0, 0, 'x', 'y', 'z')             // p
	rows = append(rows, 0b100, 1, 0, 'c')                      // second row: p NULL
	rows = binary.LittleEndian.AppendUint64(rows, 7)           //
	ev, err = p.Parse(event(WriteRowsEventV2, rows))
	if err != nil {
		t.Fatal(err)
	}
	r := ev.Body.(*Rows)
	if r.Kind != RowsInsert || len(r.Rows) != 2 || string(r.Rows[0][0].([]byte)) != "ab" || r.Rows[0][1] != int64(-42) ||
		string(r.Rows[0][2].([]byte)) != "xyz" || string(r.Rows[1][0].([]byte)) != "c" || r.Rows[1][2] != nil {
		t.Fatalf("rows = %+v", r.Rows)
	}
	gtid := append([]byte{1}, bytes.Repeat([]byte{0xab}, 16)...)
	gtid = binary.LittleEndian.AppendUint64(gtid, 99)
	ev, err = p.Parse(event(GTIDLogEvent, gtid))
	if err != nil {
		t.Fatal(err)
	}
	if g := ev.Body.(*GTID); g.String() != "abababab-abab-abab-abab-abababababab:99" || g.Standalone() {
		t.Fatalf("gtid = %v", g)
	}
	if _, err := p.Parse(event(TransactionPayload, []byte{1, 2})); err == nil || !strings.Contains(err.Error(), "compression") {
		t.Fatalf("compressed payload: %v", err)
	}
	xid := binary.LittleEndian.AppendUint64(nil, 5)
	if ev, err := p.Parse(event(XIDEvent, xid)); err != nil || ev.Body.(*XID).XID != 5 {
		t.Fatalf("xid: %v %v", ev, err)
	}
}

func TestFixedSizes(t *testing.T) {
	cases := []struct {
		t    ColumnType
		meta uint16
		n    int
	}{
		{TypeNewDecimal, 3<<8 | 10, 6}, {TypeNewDecimal, 0<<8 | 18, 8}, {TypeNewDecimal, 30<<8 | 65, 30},
		{TypeDateTime2, 0, 5}, {TypeDateTime2, 6, 8}, {TypeTimestamp2, 3, 6}, {TypeTime2, 1, 4},
		{TypeBit, 1<<8 | 2, 2}, {TypeBit, 8 << 8, 8}, {TypeDate, 0, 3},
	}
	for _, c := range cases {
		n, err := fixedSize(c.t, c.meta)
		if err != nil || n != c.n {
			t.Errorf("fixedSize(%v, %d) = %d, %v; want %d", c.t, c.meta, n, err, c.n)
		}
	}
}
