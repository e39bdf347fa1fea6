package pgcdc

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/courier-go/courier/message"
)

// FuzzInsertedRow feeds the decoding of an inserted tuple (pgoutput's text
// columns, the payload as bytea in hex) columns of any kind and content,
// at any position: it must decode a row or return an error, never panic,
// and decode a hex payload to its bytes.
//
//	go test -fuzz FuzzInsertedRow ./outbox/pgcdc/
func FuzzInsertedRow(f *testing.F) {
	f.Add([]byte("tttt"), "id", "orders", `{"a":"b"}`, `\x00ff`, uint8(0))
	f.Add([]byte("tnut"), "", "", "", `\x0`, uint8(7))
	f.Add([]byte("bt"), "x", "y", "z", "plain", uint8(2))
	f.Add([]byte{}, "", "", "", "", uint8(0))
	f.Fuzz(func(t *testing.T, kinds []byte, id, destination, headers, payload string, shift uint8) {
		cols := []string{id, destination, headers, payload}
		tuple := &pglogrepl.TupleData{}
		for i, k := range kinds {
			tuple.Columns = append(tuple.Columns, &pglogrepl.TupleDataColumn{DataType: k, Data: []byte(cols[i%len(cols)])})
		}
		tuple.ColumnNum = uint16(len(tuple.Columns))
		s := int(shift % 8)
		rel := &relation{id: s, destination: s + 1, headers: s + 2, payload: s + 3}
		row, err := rel.row(tuple)
		if err != nil {
			return
		}
		if s+3 >= len(kinds) {
			t.Fatalf("a tuple of %d columns decoded: %+v", len(kinds), row)
		}
		if p := tuple.Columns[s+3]; p.DataType == pglogrepl.TupleDataTypeText && bytes.HasPrefix(p.Data, []byte(`\x`)) {
			want, _ := hex.DecodeString(string(p.Data[2:]))
			if !bytes.Equal(row.Payload, want) {
				t.Fatalf("payload %q decoded to %x", p.Data, row.Payload)
			}
		}
		if m, err := row.Message(message.Limits{}); err == nil && m.ID != row.ID {
			t.Fatalf("message %q from row %q", m.ID, row.ID)
		}
	})
}

// The relation of an insert without a tuple, or with fewer columns than
// the layout reads, is an error, not a panic.
func TestInsertedRowWithoutColumns(t *testing.T) {
	rel := &relation{id: 0, destination: 1, headers: 2, payload: 3}
	for _, tuple := range []*pglogrepl.TupleData{nil, {}, {Columns: []*pglogrepl.TupleDataColumn{{DataType: 't', Data: []byte("x")}}}} {
		if _, err := rel.row(tuple); err == nil {
			t.Errorf("tuple %+v decoded", tuple)
		}
	}
}
