package mysqlcdc

import (
	"testing"

	"github.com/courier-go/courier/outbox"
)

// FuzzEventuateRow feeds the mapping of a binary log row of Eventuate's
// database-id table (dbid, id, destination, headers, payload, published)
// values of any kind: it must map a row or return an error, never panic,
// and keep a row only if it was not inserted as published, with an ID.
//
//	go test -fuzz FuzzEventuateRow ./outbox/mysqlcdc/
func FuzzEventuateRow(f *testing.F) {
	f.Add(int64(1701771330123), `{"ID":"a-b"}`, []byte("p"), int64(0), uint8(0))
	f.Add(int64(-1), `{}`, []byte{}, int64(1), uint8(1))
	f.Add(int64(0), `not json`, []byte{0xff}, int64(0), uint8(2))
	f.Fuzz(func(t *testing.T, dbid int64, headers string, payload []byte, published int64, kinds uint8) {
		var pub, id any = int16(published), dbid
		switch kinds % 4 {
		case 1:
			pub = nil
		case 2:
			id = "not an integer"
		case 3:
			pub = float64(published)
		}
		values := []any{id, "", "orders", headers, payload, pub}
		l := &layout{columns: 6, dbid: 0, id: 1, destination: 2, headers: 3, payload: 4, published: 5,
			eventuate: &outbox.EventuateTable{DatabaseIDs: true, OutboxID: 5}}
		row, keep, err := l.read(values)
		if err != nil || !keep {
			if keep {
				t.Fatal("kept a row that failed")
			}
			return
		}
		if p, ok := pub.(int16); ok && p != 0 {
			t.Fatalf("kept a row inserted as published (%d)", p)
		}
		if row.ID == "" || string(row.Payload) != string(payload) {
			t.Fatalf("row %+v from payload %q", row, payload)
		}
	})
}
