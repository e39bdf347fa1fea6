package mysqlcdc

import (
	"testing"

	"github.com/go-mysql-org/go-mysql/replication"

	"github.com/courier-go/courier/message"
)

// FuzzRowMapping feeds the mapping from a binary log row to an outbox row
// (the layout's check of the TABLE_MAP and its row function) columns
// whose types, metadata, names and values come from the server: it must
// accept a row or return an error, never panic, and hand the message
// decoder only what the row held.
//
//	go test -fuzz FuzzRowMapping ./outbox/mysqlcdc/
func FuzzRowMapping(f *testing.F) {
	f.Add([]byte{15, 15, 252, 251, 1, 8}, []byte{0, 1, 0, 1, 3, 3}, "id", "orders", `{"a":"b"}`, []byte("payload"), uint16(0))
	f.Add([]byte{254, 253, 252, 249}, []byte{1, 1, 2, 0}, "", "", "", []byte{}, uint16(247<<8))
	f.Add([]byte{245, 15}, []byte{4}, "x", "y", "z", []byte{0xff}, uint16(0))
	f.Fuzz(func(t *testing.T, types, kinds []byte, id, destination, headers string, payload []byte, meta uint16) {
		if len(types) > 64 {
			return
		}
		l := &layout{columns: len(types), id: 0, destination: 1, headers: 2, payload: 3}
		tm := &replication.TableMapEvent{Schema: []byte("db"), Table: []byte("message"), ColumnType: types,
			ColumnMeta: make([]uint16, len(types))}
		for i := range tm.ColumnMeta {
			tm.ColumnMeta[i] = meta
		}
		if len(types) >= 4 {
			tm.ColumnName = [][]byte{[]byte("id"), []byte("destination"), []byte("headers"), []byte("payload")}
		}
		if err := l.check(tm); err != nil {
			return // the relay stops on a table it cannot read
		}
		text := []any{id, destination, headers, payload}
		values := make([]any, len(kinds))
		for i, k := range kinds {
			v := text[i%len(text)]
			switch k % 5 {
			case 0:
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
			case 1:
				if s, ok := v.(string); ok {
					v = []byte(s)
				}
			case 2:
				v = nil
			case 3:
				v = int64(i)
			case 4:
				v = float64(i) / 3
			}
			values[i] = v
		}
		row, err := l.row(values)
		if err != nil {
			return
		}
		if len(values) < 4 {
			t.Fatalf("a row of %d values mapped to %+v", len(values), row)
		}
		if m, err := row.Message(message.Limits{}); err == nil && m.ID != row.ID {
			t.Fatalf("message %q from row %q", m.ID, row.ID)
		}
	})
}
