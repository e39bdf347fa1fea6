package direct

import (
	"bytes"
	"errors"
	"maps"
	"testing"

	"github.com/courier-go/courier/message"
)

func TestFramesRoundTrip(t *testing.T) {
	m := &message.Message{ID: "0000000000000001-0000000000000002", Headers: message.Headers{"a": "1", "": "\xff", "PARTITION_ID": "k"}, Payload: []byte{0, 1, 2}}
	q, err := decodeRequest(appendDeliver(nil, 7, "inst", "orders", 3, m))
	if err != nil {
		t.Fatal(err)
	}
	if q.kind != kindDeliver || q.seq != 7 || q.instance != "inst" || q.channel != "orders" || q.shard != 3 ||
		q.msg.ID != m.ID || !bytes.Equal(q.msg.Payload, m.Payload) || len(q.msg.Headers) != 3 || q.msg.Headers[""] != "\xff" {
		t.Fatalf("deliver frame decoded as %+v, message %+v", q, q.msg)
	}
	q, err = decodeRequest(appendFlush(nil, 8, "inst", "orders", 63))
	if err != nil || q.kind != kindFlush || q.seq != 8 || q.shard != 63 || q.msg != nil {
		t.Fatalf("flush frame decoded as %+v, %v", q, err)
	}
	r, err := decodeResponse(appendResponse(nil, response{seq: 9, status: statusGone, text: "closing"}))
	if err != nil || r != (response{seq: 9, status: statusGone, text: "closing"}) {
		t.Fatalf("response decoded as %+v, %v", r, err)
	}
}

func TestMalformedFramesRefused(t *testing.T) {
	good := appendDeliver(nil, 1, "i", "c", 0, &message.Message{ID: "x", Headers: message.Headers{"h": "v"}, Payload: []byte("p")})
	for name, b := range map[string][]byte{
		"empty":          nil,
		"unknown kind":   append([]byte{9}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"huge header count": func() []byte {
			b := appendFlush(nil, 1, "i", "c", 0)
			b[0] = kindDeliver
			return append(appendString(b, "id"), 0xff, 0xff, 0xff, 0xff, 0x0f)
		}(),
		"shard over the maximum": appendFlush(nil, 1, "i", "c", maxShards+1),
	} {
		if _, err := decodeRequest(b); !errors.Is(err, errMalformed) {
			t.Errorf("%s: decodeRequest = %v, want errMalformed", name, err)
		}
	}
	if _, err := decodeResponse([]byte{1, 7}); !errors.Is(err, errMalformed) {
		t.Errorf("response of unknown status: %v", err)
	}
}

// FuzzDecodeFrames decodes any bytes as the receiver and the sender do
// with what comes over the network: an error wrapping errMalformed, or a
// frame that, encoded again, decodes to the same frame; never a panic.
//
//	go test -fuzz FuzzDecodeFrames ./broker/direct/
func FuzzDecodeFrames(f *testing.F) {
	f.Add(appendDeliver(nil, 1, "inst", "orders", 5, &message.Message{ID: "id", Headers: message.Headers{"k": "v"}, Payload: []byte("body")}))
	f.Add(appendFlush(nil, 2, "inst", "orders", 5))
	f.Add(appendResponse(nil, response{seq: 3, status: statusOK}))
	f.Add([]byte{kindDeliver, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if q, err := decodeRequest(b); err == nil {
			again := appendFlush(nil, q.seq, q.instance, q.channel, q.shard)
			if q.kind == kindDeliver {
				again = appendDeliver(nil, q.seq, q.instance, q.channel, q.shard, q.msg)
			}
			q2, err := decodeRequest(again)
			if err != nil || q2.kind != q.kind || q2.seq != q.seq || q2.instance != q.instance || q2.channel != q.channel || q2.shard != q.shard ||
				(q.msg == nil) != (q2.msg == nil) || (q.msg != nil && (q.msg.ID != q2.msg.ID || !bytes.Equal(q.msg.Payload, q2.msg.Payload) || !maps.Equal(q.msg.Headers, q2.msg.Headers))) {
				t.Fatalf("request %x decoded to %+v, which encodes to %x, decoded to %+v, %v", b, q, again, q2, err)
			}
		} else if !errors.Is(err, errMalformed) {
			t.Fatalf("decodeRequest error %v does not wrap errMalformed", err)
		}
		if r, err := decodeResponse(b); err == nil {
			if r2, err := decodeResponse(appendResponse(nil, r)); err != nil || r2 != r {
				t.Fatalf("response %x decoded to %+v, then %+v, %v", b, r, r2, err)
			}
		} else if !errors.Is(err, errMalformed) {
			t.Fatalf("decodeResponse error %v does not wrap errMalformed", err)
		}
	})
}
