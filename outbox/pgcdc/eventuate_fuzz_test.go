package pgcdc

import (
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/courier-go/courier/outbox"
)

// FuzzEventuateRow feeds the decoding of an inserted tuple of Eventuate's
// database-id table (dbid, id, destination, headers, payload, published)
// columns of any content: it must decode a row or return an error, never
// panic; it keeps a row only if it was not inserted as published, with an
// ID, and the payload as it was (TEXT, never decoded as hex).
//
//	go test -fuzz FuzzEventuateRow ./outbox/pgcdc/
func FuzzEventuateRow(f *testing.F) {
	f.Add("1701771330123", `{"ID":"a-b"}`, `\x00ff`, "0", byte('t'))
	f.Add("x", `{}`, "p", "1", byte('n'))
	f.Add("-1", `not json`, "", "", byte('u'))
	f.Fuzz(func(t *testing.T, dbid, headers, payload, published string, kind byte) {
		tuple := &pglogrepl.TupleData{Columns: []*pglogrepl.TupleDataColumn{
			{DataType: 't', Data: []byte(dbid)}, {DataType: 't', Data: []byte("")}, {DataType: 't', Data: []byte("orders")},
			{DataType: 't', Data: []byte(headers)}, {DataType: 't', Data: []byte(payload)}, {DataType: kind, Data: []byte(published)},
		}}
		rel := &relation{dbid: 0, id: 1, destination: 2, headers: 3, payload: 4, published: 5,
			eventuate: &outbox.EventuateTable{DatabaseIDs: true, OutboxID: 5}}
		row, keep, err := rel.read(tuple)
		if err != nil || !keep {
			if keep {
				t.Fatal("kept a row that failed")
			}
			return
		}
		if kind == 't' && published != "" && published != "0" {
			t.Fatalf("kept a row inserted as published (%q)", published)
		}
		if row.ID == "" || string(row.Payload) != payload {
			t.Fatalf("row %+v from payload %q", row, payload)
		}
	})
}
