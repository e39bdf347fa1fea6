package pgcdc

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"
)

// xlog wraps a pgoutput message in the XLogData message the server
// streams it in.
func xlog(msg []byte) []byte {
	b := []byte{pglogrepl.XLogDataByteID}
	b = binary.BigEndian.AppendUint64(b, 1) // WAL start
	b = binary.BigEndian.AppendUint64(b, 2) // server WAL end
	b = binary.BigEndian.AppendUint64(b, 3) // server time
	return append(b, msg...)
}

// outboxStream returns a stream's messages: the outbox table's relation,
// and a transaction inserting one row.
func outboxStream() [][]byte {
	str := func(b []byte, s string) []byte { return append(append(b, s...), 0) }
	rel := []byte{'R'}
	rel = binary.BigEndian.AppendUint32(rel, 16384)
	rel = str(str(rel, "public"), "message")
	rel = append(rel, 'd')
	rel = binary.BigEndian.AppendUint16(rel, 4)
	for _, c := range []string{"id", "destination", "headers", "payload"} {
		rel = append(rel, 0)
		rel = str(rel, c)
		rel = binary.BigEndian.AppendUint32(rel, 25) // text
		rel = binary.BigEndian.AppendUint32(rel, 0xffffffff)
	}
	begin := []byte{'B'}
	begin = binary.BigEndian.AppendUint64(begin, 100)
	begin = binary.BigEndian.AppendUint64(begin, 0)
	begin = binary.BigEndian.AppendUint32(begin, 7)
	ins := []byte{'I'}
	ins = binary.BigEndian.AppendUint32(ins, 16384)
	ins = append(ins, 'N')
	ins = binary.BigEndian.AppendUint16(ins, 4)
	for _, v := range []string{"0000000000000001-0000000000000002", "orders", `{"a":"b"}`, `\x6869`} {
		ins = append(ins, 't')
		ins = binary.BigEndian.AppendUint32(ins, uint32(len(v)))
		ins = append(ins, v...)
	}
	commit := []byte{'C', 0}
	commit = binary.BigEndian.AppendUint64(commit, 99)
	commit = binary.BigEndian.AppendUint64(commit, 100)
	commit = binary.BigEndian.AppendUint64(commit, 0)
	return [][]byte{xlog(rel), xlog(begin), xlog(ins), xlog(commit)}
}

// FuzzStream feeds the reader what a server, or anything posing as one,
// may stream: keepalives and XLogData messages holding pgoutput messages
// of any content, valid or truncated. The reader must take each or return
// an error, never panic (pglogrepl's decoder panics on some truncated
// messages: the reader recovers and reports it), and the rows it gathers
// must hold what the inserts held.
//
//	go test -fuzz FuzzStream ./outbox/pgcdc/
func FuzzStream(f *testing.F) {
	msgs := outboxStream()
	for i, m := range msgs {
		f.Add(m, msgs[min(i+1, len(msgs)-1)])
		f.Add(m[:len(m)/2], m)
	}
	keepalive := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte{pglogrepl.PrimaryKeepaliveMessageByteID}, 5), 6)
	f.Add(append(keepalive, 1), []byte{})
	f.Add([]byte{pglogrepl.XLogDataByteID}, []byte{'w', 'R'})
	f.Fuzz(func(t *testing.T, first, second []byte) {
		s := &reader{src: &Source{}, relations: map[uint32]*relation{}}
		for _, m := range outboxStream()[:2] {
			if err := s.copyData(m); err != nil {
				t.Fatalf("a valid relation and begin: %v", err)
			}
		}
		for _, data := range [][]byte{first, second, first} {
			if err := s.copyData(data); err != nil {
				return
			}
		}
		for _, r := range append(s.tx, s.batch...) {
			if r.Destination == "" && r.ID == "" && len(r.Headers) == 0 && len(r.Payload) == 0 {
				continue
			}
			if len(r.ID) > len(first)+len(second) {
				t.Fatalf("a row's id of %d bytes from %d bytes of stream", len(r.ID), len(first)+len(second))
			}
		}
	})
}

// A relation message cut short, on which pglogrepl's decoder panics, is
// an error that says so: the relay reconnects instead of crashing.
func TestTruncatedMessageIsAnError(t *testing.T) {
	rel := outboxStream()[0]
	s := &reader{src: &Source{}, relations: map[uint32]*relation{}}
	err := s.copyData(rel[:len(rel)/2])
	if err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("copyData of half a relation message = %v, want the decoder's panic as an error", err)
	}
}
